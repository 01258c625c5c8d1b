"""Commands run in a new Python process, to see what they import: a mistake must answer before
torch is imported (issue 26)."""

import json
import subprocess
import sys


def in_fresh_process(calls):
    """Run ``cvtools ARGS`` for each argument list in one new Python process: [(exit code, stderr
    lines)] and whether torch was imported by the end."""
    calls = [[str(a) for a in args] for args in calls]
    code = ("import json, sys\nfrom click.testing import CliRunner\nfrom cvtools.cli import cli\n"
            f"calls = {json.dumps(calls)}\nout = []\n"
            "for args in calls:\n"
            "    r = CliRunner().invoke(cli, args, prog_name='cvtools')\n"
            "    out.append((r.exit_code, [line for line in r.stderr.splitlines() if line.strip()]))\n"
            "print(json.dumps({'results': out, 'torch': 'torch' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["results"], report["torch"]


def run_fresh(*args):
    """One command in a new process: (exit code, stderr text, whether torch was imported)."""
    results, torch_loaded = in_fresh_process([args])
    code, lines = results[0]
    return code, "\n".join(lines), torch_loaded
