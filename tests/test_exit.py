"""The console entry point ends the process without the interpreter's teardown once a command
is done (cvtools.cli._exit_now): what a user sees must not change."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args, tmp_path, **env):
    import os

    return subprocess.run([sys.executable, "-m", "cvtools", *args], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300)


def test_piped_output_exit_handlers_and_exit_codes_survive_the_fast_exit(tmp_path):
    timings = tmp_path / "timings.json"
    photo = ROOT / "samples" / "chelsea.jpg"
    r = _run(["classify", str(photo), "--device", "cpu", "--top", "3"], tmp_path, CVTOOLS_TIMINGS=str(timings))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].endswith("chelsea.jpg:") and len(lines) == 4  # flushed into the pipe
    assert "exit" in json.loads(timings.read_text())  # the atexit handler ran
    bad = _run(["classify", str(tmp_path / "missing.jpg"), "--device", "cpu"], tmp_path)
    assert bad.returncode != 0 and "missing.jpg" in bad.stderr and "Traceback" not in bad.stderr
