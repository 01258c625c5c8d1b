"""Every command against the bad-input corpus (tests/badinputs.py), plus output safety,
interruption and damaged weights.

For each command that exists, ONE batch runs over every corpus case plus a good image, and
each (command, case) pair is checked against that run:

- an ``error`` case: exactly one stderr line names the file and gives the reason, no traceback,
  no output file for it (not even a partial or temporary one);
- an ``ok`` case: its result is there and decodes at the right size (a writer) or its JSON row
  is printed (classify). A 1×1 image may instead be refused with a one-line error;
- the batch goes on: the good image is processed whatever comes before it, and the exit
  status is non-zero because some inputs failed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import pytest
from badinputs import BOMB_LIMIT, CASE_NAMES, make_corpus, photo, unwritable_output
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- commands


@dataclass
class Command:
    name: str
    writes: bool
    args: Callable  # (inputs: list[str], out: Path, extra: dict) -> list of CLI arguments
    needs: Optional[str] = None  # fixture-made resource (a style file)
    same_size: bool = True  # the output has the input's size (else: its proportions, ±5%)

    def check_size(self, got, expect):
        if self.same_size:
            assert got == expect, (got, expect)
        else:
            assert abs(got[0] / got[1] - expect[0] / expect[1]) <= 0.05 * expect[0] / expect[1] + 1.0 / got[1], (
                got, expect)

    def argv(self, inputs, out, extra) -> list:
        return [self.name, *self.args(inputs, out, extra)]


def _style_file(d: Path) -> Path:
    """A tiny random cvtools style (narrow network) made through the style package's own writer."""
    import torch

    from cvtools.style.network import TransformerNet
    from cvtools.style.records import save_style_weights

    torch.manual_seed(0)
    net = TransformerNet(width=0.25)
    path = d / "tiny_style.safetensors"
    if not path.exists():
        save_style_weights(net, path, name="tiny")
    return path


COMMANDS = [
    Command("classify", False,
            lambda inputs, out, x: [*inputs, "--weights", "random", "--device", "cpu", "--json", "--top", "1"]),
    Command("stylize", True,
            lambda inputs, out, x: [*inputs, "--style", x["style"], "--device", "cpu", "--tile", "off",
                                    "-o", f"{out}/"], needs="style"),
    Command("dream", True,
            lambda inputs, out, x: [*inputs, "--weights", "random", "--device", "cpu", "--octaves", "1",
                                    "--steps", "1", "-o", f"{out}/"]),
    Command("visualize", True,
            lambda inputs, out, x: ["saliency", *inputs, "--weights", "random", "--device", "cpu",
                                    "--size", "32", "--no-caption", "-o", f"{out}/"], same_size=False),
]
BY_NAME = {c.name: c for c in COMMANDS}
WRITERS = [c.name for c in COMMANDS if c.writes]


def _command(name) -> Command:
    return BY_NAME[name]


def _invoke(args):
    from click.testing import CliRunner

    from cvtools.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="cvtools")


def _extra(tmp_dir: Path, cmd: Command) -> dict:
    return {"style": str(_style_file(tmp_dir))} if cmd.needs == "style" else {}


def _no_traceback(result):
    text = result.output + (result.stderr or "")
    assert "Traceback" not in text, text
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)


def _outputs_for(out: Path, stem: str) -> List[Path]:
    return sorted(p for p in out.glob(f"{stem}_*") if p.is_file()) if out.exists() else []


def _hidden(out: Path) -> List[str]:
    return sorted(p.name for p in out.rglob(".*")) if out.exists() else []


@pytest.fixture(autouse=True, scope="module")
def _reuse_random_backbones():
    """In-process runs build each random-weights backbone once (a build takes seconds on a
    busy 2-core machine, and these tests are about inputs and outputs, not about building
    networks). Real weight files always go through the real loader."""
    import cvtools.backbones as backbones

    real = backbones.load_backbone
    cache = {}

    def cached(name="efficientnet_lite0", device="auto", fuse=True, precision="auto", channels_last=None,
               compile=False, weights=None, **more):
        if weights != "random" or compile or any(more.values()):
            return real(name, device=device, fuse=fuse, precision=precision, channels_last=channels_last,
                        compile=compile, weights=weights, **more)
        key = (name, device, fuse, precision, channels_last)
        if key not in cache:
            cache[key] = real(name, device=device, fuse=fuse, precision=precision, channels_last=channels_last,
                              weights=weights)
        return cache[key]

    mp = pytest.MonkeyPatch()
    mp.setattr(backbones, "load_backbone", cached)
    yield
    mp.undo()


# ----------------------------------------------------------------------------- the corpus run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    return d, make_corpus(d)


@pytest.fixture(scope="module")
def batch_runs(corpus, tmp_path_factory):
    """{command: (result, out dir)}: one run per command over every case, the good image last."""
    d, cases = corpus
    runs = {}

    def get(name):
        if name not in runs:
            cmd = _command(name)
            out = tmp_path_factory.mktemp(f"out_{name}")
            inputs = [str(c.path) for n, c in cases.items() if n != "good"] + [str(cases["good"].path)]
            args = cmd.argv(inputs, out, _extra(d, cmd)) + ["--max-pixels", BOMB_LIMIT]
            runs[name] = (_invoke(args), out)
        return runs[name]

    return get


def _lines_naming(text: str, path: Path) -> List[str]:
    """Error lines naming ``path`` (progress bars and notes may name it too)."""
    return [line for line in text.replace("\r", "\n").splitlines() if path.name in line and "error" in line]


@pytest.mark.parametrize("case_name", CASE_NAMES)
@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_corpus_case(command, case_name, corpus, batch_runs):
    d, cases = corpus
    case = cases[case_name]
    result, out = batch_runs(command)
    _no_traceback(result)
    assert result.exit_code == 1, (result.exit_code, result.stderr)  # some inputs are bad: non-zero
    errors = _lines_naming(result.stderr, case.path)
    cmd = BY_NAME[command]
    stem = case.path.stem
    if case.is_error:
        assert len(errors) == 1, f"expected one error line naming {case.path.name}:\n{result.stderr}"
        reason = errors[0].split(case.path.name, 1)[1]  # not the file name: "truncated.jpg" says nothing
        assert re.search(case.reason, reason, re.I), errors[0]
        assert errors[0].startswith("cvtools: error: "), errors[0]  # one clean line, no progress-bar debris
        assert "error" in errors[0]
        if cmd.writes:
            assert _outputs_for(out, stem) == [], "a refused input left an output"
        else:  # no prediction for it: its --json line, if any, is its error
            rows = [json.loads(line) for line in result.stdout.splitlines() if case.path.name in line]
            assert all("error" in row and "top" not in row for row in rows), rows
    else:
        produced = _outputs_for(out, stem) if cmd.writes else [
            row for row in (json.loads(line) for line in result.stdout.splitlines() if case.path.name in line)
            if "top" in row]
        if case.tiny and errors and not produced:
            assert len(errors) == 1 and "error" in errors[0], errors  # a clear refusal is fine
            return
        assert errors == [], f"{case.path.name} should be processed:\n{result.stderr}"
        assert len(produced) >= 1, f"no result for {case.path.name}"
        if cmd.writes:
            for p in produced:
                if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"):
                    with Image.open(p) as im:
                        im.load()  # decodes completely
                        cmd.check_size(im.size, case.size)
                        if case.alpha and cmd.same_size and p.suffix.lower() in (".png", ".webp", ".tif", ".tiff"):
                            # transparency survives the effect, pixel for pixel
                            from cvtools.io.decode import load_image

                            expect = np.asarray(load_image(case.path).alpha)
                            assert im.mode in ("RGBA", "LA"), (p.name, im.mode)
                            assert np.array_equal(np.asarray(im.getchannel("A")), expect), p.name
        else:
            assert produced[0]["top"] and 0.0 <= produced[0]["top"][0]["probability"] <= 1.0
    if cmd.writes:
        assert _hidden(out) == [], f"temporary files left: {_hidden(out)}"


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_single_bad_input_exits_nonzero_with_one_line(command, corpus, tmp_path):
    d, cases = corpus
    cmd = _command(command)
    result = _invoke(cmd.argv([str(cases["text_as_jpg"].path)], tmp_path / "out", _extra(d, cmd)))
    _no_traceback(result)
    assert result.exit_code == 1
    lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("cvtools: note")]
    assert len(lines) == 1 and "notes.jpg" in lines[0] and "not a recognised image" in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_max_pixels_from_environment(corpus, monkeypatch, run_cli):
    """The limit also comes from CVTOOLS_MAX_PIXELS; --max-pixels does not leak into the next run;
    a malformed value is a one-line usage error."""
    from cvtools.errors import ImageError, UsageError
    from cvtools.io.decode import load_image

    d, cases = corpus
    bomb = cases["bomb_small"].path
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", str(BOMB_LIMIT))
    with pytest.raises(ImageError, match="4,096 pixels, over the 4,000 pixels safety limit"):
        load_image(bomb)
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "0")
    assert load_image(bomb).size == (64, 64)
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="CVTOOLS_MAX_PIXELS='lots'"):
        load_image(bomb)
    monkeypatch.delenv("CVTOOLS_MAX_PIXELS")
    r = run_cli("classify", bomb, cases["good"].path, "--weights", "random", "--device", "cpu", "--json",
                "--max-pixels", "100")
    assert r.exit_code == 1 and "safety limit" in r.stderr and "good.png" in r.stderr
    assert "CVTOOLS_MAX_PIXELS" not in os.environ  # restored after the command
    assert load_image(bomb).size == (64, 64)


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("command", WRITERS)
def test_unwritable_output_directory(command, corpus, tmp_path):
    """-o under a regular file: mkdir fails even for root. One line, exit 1, nothing written."""
    d, cases = corpus
    cmd = _command(command)
    out = unwritable_output(tmp_path)
    result = _invoke(cmd.argv([str(cases["good"].path)], out, _extra(d, cmd)))
    _no_traceback(result)
    assert result.exit_code == 1
    errors = [l for l in result.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and "cannot create the output directory" in errors[0], result.stderr
    assert str(out) in errors[0] or "a_regular_file" in errors[0]
    assert sorted(os.listdir(tmp_path)) == ["a_regular_file"]


@pytest.mark.parametrize("command", WRITERS)
def test_outputs_never_overwrite_inputs_or_existing_files(command, corpus, tmp_path):
    """The re-run policy on the command line: -o naming the input is refused; the same command
    again skips (exit 0, file untouched); other options write NAME-2 and say what changed;
    a file cvtools did not make is kept; --overwrite replaces; an explicit -o FILE is never
    renamed."""
    d, cases = corpus
    cmd = _command(command)
    src = tmp_path / "in.png"
    photo(48, 40, seed=5).save(src)
    before = src.read_bytes()
    extra = _extra(d, cmd)

    # -o naming the input itself
    args = cmd.argv([str(src)], tmp_path, extra)
    args[args.index("-o") + 1] = str(src)
    r = _invoke(args)
    _no_traceback(r)
    assert r.exit_code == 1 and "overwrite an input" in r.stderr
    assert src.read_bytes() == before

    # first run writes; the same command again skips it, exit 0, the file untouched
    out = tmp_path / "out"
    r = _invoke(cmd.argv([str(src)], out, extra))
    assert r.exit_code == 0, r.stderr
    (target,) = _outputs_for(out, "in")
    first = target.read_bytes()
    r = _invoke(cmd.argv([str(src)], out, extra))
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    assert "already done" in r.stderr and target.name in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert target.read_bytes() == first and _outputs_for(out, "in") == [target]

    # other options: a new file, named on one line that says what changed
    other = {"stylize": ["--strength", "0.5"], "dream": ["--seed", "7"], "visualize": ["--alpha", "0.3"]}[command]
    r = _invoke(cmd.argv([str(src)], out, extra) + other)
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    second = target.with_name(f"{target.stem}-2{target.suffix}")
    notes = [l for l in r.stderr.splitlines() if "note" in l]
    assert len(notes) == 1 and f"writing {second}" in notes[0] and other[0] in notes[0], r.stderr
    assert target.read_bytes() == first and second.exists()

    # a file that cvtools did not make is kept: the next free name again
    photo(48, 40, seed=9).save(target, format=Image.open(target).format)
    foreign = target.read_bytes()
    r = _invoke(cmd.argv([str(src)], out, extra))
    assert r.exit_code == 0, r.stderr
    assert target.read_bytes() == foreign
    third = target.with_name(f"{target.stem}-3{target.suffix}")
    assert third.exists() and "not made by" in r.stderr, r.stderr

    # an explicit -o FILE is never renamed: refused unless --overwrite
    args = cmd.argv([str(src)], out, extra)
    args[args.index("-o") + 1] = str(target)
    r = _invoke(args)
    _no_traceback(r)
    assert r.exit_code == 1 and "--overwrite" in r.stderr and target.name in r.stderr
    assert target.read_bytes() == foreign
    r = _invoke(args + ["--overwrite"])
    assert r.exit_code == 0, r.stderr
    with Image.open(target) as im:
        im.load()
        cmd.check_size(im.size, (48, 40))
    assert target.read_bytes() != foreign
    assert src.read_bytes() == before and _hidden(out) == []


@pytest.mark.parametrize("command", WRITERS)
def test_two_inputs_never_share_an_output(command, corpus, tmp_path):
    """a/x.png and b/x.png into one -o directory: the second gets x_SUFFIX-2 (even with
    --overwrite) instead of replacing the first one's result; a re-run skips both."""
    d, cases = corpus
    cmd = _command(command)
    for sub, seed in (("a", 1), ("b", 2)):
        (tmp_path / sub).mkdir()
        photo(40, 32, seed=seed).save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    argv = cmd.argv([str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")], out, _extra(d, cmd))
    r = _invoke(argv + ["--overwrite"])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    notes = [l for l in r.stderr.splitlines() if "is the output for" in l]
    assert len(notes) == 1 and str(tmp_path / "a" / "x.png") in notes[0], r.stderr
    made = _outputs_for(out, "x")
    assert len(made) == 2 and made[0].read_bytes() != made[1].read_bytes()
    r = _invoke(argv)
    assert r.exit_code == 0 and "skipped 2 already done" in r.stderr, r.stderr
    assert _outputs_for(out, "x") == made


def _folder(tmp_path, n=3, size=(40, 32)):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(n):
        photo(*size, seed=i).save(folder / f"i{i:02d}.png")
    return folder


@pytest.mark.parametrize("mode", ["next-to-inputs", "into-o", "shell-glob"])
@pytest.mark.parametrize("command", WRITERS)
def test_rerun_of_a_folder_continues_where_it_stopped(command, mode, corpus, tmp_path):
    """A folder run that stopped part-way (here: one output missing) is finished by running
    the same command again: the missing one is made, the others are skipped and counted,
    exit 0, and no output is taken as an input (no i00_x_x.png), even in the inputs' folder
    or when the shell expanded `photos/*` into file names."""
    d, cases = corpus
    cmd = _command(command)
    folder = _folder(tmp_path)
    out = tmp_path / "out" if mode == "into-o" else folder

    def argv():
        inputs = [str(p) for p in sorted(folder.iterdir())] if mode == "shell-glob" else [str(folder)]
        args = cmd.argv(inputs, tmp_path / "out", _extra(d, cmd))
        if mode != "into-o":
            i = args.index("-o")
            del args[i:i + 2]
        return args

    r = _invoke(argv())
    assert r.exit_code == 0, r.stderr
    made = {p.name: p.read_bytes() for p in out.iterdir() if "_" in p.name}
    assert len(made) == 3, made.keys()
    missing = sorted(made)[1]
    (out / missing).unlink()
    r = _invoke(argv())
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    assert "skipped 2 already done" in r.stderr, r.stderr
    if mode != "into-o":
        assert "left out 2 earlier outputs" in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir() if "_" in p.name) == sorted(made)  # nothing else appeared
    for name, data in made.items():
        if name != missing:
            assert (out / name).read_bytes() == data  # untouched
    assert "error" not in r.stderr
    r = _invoke(argv())  # and once more: nothing to do at all
    assert r.exit_code == 0 and "skipped 3 already done" in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir() if "_" in p.name) == sorted(made)


def test_a_photo_only_named_like_an_output_is_left_out_by_name_and_kept(corpus, tmp_path):
    """beach.png and beach_dream.png (someone's photo, no marker) in a folder: the second is left
    out with a note naming it, and never replaced, even with --overwrite."""
    d, cases = corpus
    cmd = _command("dream")
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(40, 32, seed=1).save(folder / "beach.png")
    photo(40, 32, seed=2).save(folder / "beach_dream.png")
    before = (folder / "beach_dream.png").read_bytes()
    argv = cmd.argv([str(folder)], tmp_path, _extra(d, cmd))
    i = argv.index("-o")
    del argv[i:i + 2]
    r = _invoke(argv + ["--overwrite"])
    _no_traceback(r)
    assert r.exit_code == 0, r.stderr
    notes = [l for l in r.stderr.splitlines() if "note" in l and "named like" in l]
    assert len(notes) == 1 and "beach_dream.png" in notes[0], r.stderr
    assert (folder / "beach_dream.png").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["beach.png", "beach_dream-2.png", "beach_dream.png"]


@pytest.mark.slow
def test_interrupted_folder_stylize_next_to_inputs_resumes_cleanly(corpus, tmp_path):
    """The issue's case end to end: Ctrl-C a folder stylize writing next to its inputs, run it
    again: exit 0, every photo has exactly one output, none was stylized twice."""
    d, cases = corpus
    cmd = _command("stylize")
    folder = _folder(tmp_path, n=8, size=(96, 80))
    argv = cmd.argv([str(folder)], tmp_path, _extra(d, cmd))
    i = argv.index("-o")
    del argv[i:i + 2]

    proc_args = [sys.executable, "-m", "cvtools", *argv, "-q"]
    rc, stderr = _interrupt_after_first_output(proc_args, folder, done=lambda: any(
        "_" in p.name and not p.name.startswith(".") for p in folder.iterdir()))
    assert rc == 130, (rc, stderr)
    assert "run the same command again to continue" in stderr, stderr
    before = sorted(p.name for p in folder.iterdir() if "_" in p.name)
    assert 1 <= len(before) < 8, before
    r = subprocess.run([sys.executable, "-m", "cvtools", *argv], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"skipped {len(before)} already done" in r.stderr and f"left out {len(before)} earlier" in r.stderr, \
        r.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"i{i:02d}.png" for i in range(8)] + [f"i{i:02d}_tiny_style.png" for i in range(8)]), names


def test_side_outputs_are_claimed_like_outputs(corpus, tmp_path):
    """visualize --sanity --overwrite with an input named like the sanity grid: the input is
    never overwritten (one error naming it); found in a folder, such a file is not an input."""
    d, cases = corpus
    cmd = _command("visualize")
    good = tmp_path / "good.png"
    photo(48, 40, seed=1).save(good)
    decoy = tmp_path / "good_saliency_sanity.png"
    photo(48, 40, seed=2).save(decoy)
    before = decoy.read_bytes()
    argv = cmd.argv([str(good), str(decoy)], tmp_path, _extra(d, cmd))
    i = argv.index("-o")
    del argv[i:i + 2]
    r = _invoke(argv + ["--sanity", "--overwrite"])
    _no_traceback(r)
    assert decoy.read_bytes() == before
    errors = [l for l in r.stderr.splitlines() if "error" in l]
    assert r.exit_code == 1 and len(errors) == 1 and "overwrite an input" in errors[0] and decoy.name in errors[0], \
        r.stderr
    # in a folder, the decoy is named like good.png's side output: not an input
    folder = tmp_path / "folder"
    folder.mkdir()
    for p in (good, decoy):
        (folder / p.name).write_bytes(p.read_bytes())
    r = _invoke(cmd.argv([str(folder)], tmp_path / "out", _extra(d, cmd)))
    assert r.exit_code == 0 and "left out 1 earlier output" in r.stderr, r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good_saliency.png"]


# ----------------------------------------------------------------------------- interruption

_HARNESS = r"""
import sys, time
from pathlib import Path
import click
from PIL import Image
from cvtools.cli.common import finish, run_batch, run_outputs
from cvtools.io.atomic import atomic_write
from cvtools.io.decode import load_image
from cvtools.io.naming import output_path_for

out = Path(sys.argv[1])
inputs = sys.argv[2:]

@click.command()
def main():
    outputs = run_outputs()

    def work(path):
        target = output_path_for(path, str(out) + "/", "copy", ext=".png", many=True, outputs=outputs)
        image = load_image(path)
        def write(tmp):
            with open(tmp, "wb") as f:  # a slow writer: half the file, a pause, the rest
                import io
                buf = io.BytesIO(); image.rgb.save(buf, "PNG"); data = buf.getvalue()
                f.write(data[: len(data) // 2]); f.flush(); time.sleep(0.25); f.write(data[len(data) // 2:])
        atomic_write(target, write, outputs=outputs)
    finish(run_batch(inputs, work, "copy", quiet=True, outputs=outputs))

main(args=[])
"""


def _default_sigint():
    """In the child, before cvtools starts: Ctrl-C as a terminal delivers it. A suite started in
    the background by a non-interactive shell runs with SIGINT ignored, which children inherit
    (and Python then installs no KeyboardInterrupt handler): the command under test would never
    hear the signal the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after_first_output(cmd_line, out: Path, sig=signal.SIGINT, timeout=120.0, done=None):
    proc = subprocess.Popen(cmd_line, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_default_sigint)
    deadline = time.monotonic() + timeout
    done = done or (lambda: out.exists() and any(not p.name.startswith(".") for p in out.iterdir()))
    try:
        while time.monotonic() < deadline:
            if done():
                break
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


def _assert_only_complete_outputs(out: Path, n_inputs: int, size, check=None):
    assert _hidden(out) == [], f"temporary files left: {_hidden(out)}"
    files = sorted(out.iterdir())
    assert 1 <= len(files) < n_inputs, f"interruption came too late to test anything: {len(files)} outputs"
    for p in files:
        with Image.open(p) as im:
            im.load()
            (check or (lambda got, expect: got == expect or pytest.fail(f"{got} != {expect}")))(im.size, size)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_batch_leaves_only_complete_files(tmp_path, sig):
    """run_batch + atomic_write (the machinery every writer uses), interrupted mid-write."""
    n = 12
    inputs = []
    for i in range(n):
        p = tmp_path / f"in{i:02d}.png"
        photo(64, 48, seed=i).save(p)
        inputs.append(str(p))
    out = tmp_path / "out"
    harness = tmp_path / "harness.py"
    harness.write_text(_HARNESS)
    rc, stderr = _interrupt_after_first_output([sys.executable, str(harness), str(out), *inputs], out, sig)
    assert rc == 130, (rc, stderr)
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    _assert_only_complete_outputs(out, n, (64, 48))


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if c == "dream" else c
                                     for c in WRITERS])  # dream: 6 s on 2 cores, the others 2-3
def test_sigint_during_cli_batch(command, corpus, tmp_path):
    """The real command as a subprocess over several images, Ctrl-C after the first output."""
    d, cases = corpus
    cmd = _command(command)
    n = 8
    inputs = []
    for i in range(n):
        p = tmp_path / f"p{i}.png"
        photo(96, 80, seed=i).save(p)
        inputs.append(str(p))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "cvtools", *cmd.argv(inputs, out, _extra(d, cmd)), "-q"]
    rc, stderr = _interrupt_after_first_output(args, out)
    assert rc == 130, (rc, stderr)
    assert "Traceback" not in stderr, stderr
    _assert_only_complete_outputs(out, n, (96, 80), cmd.check_size)


# ----------------------------------------------------------------------------- weights


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    import torch
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("weights")
    marker = d / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    good = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.zeros(4)}
    torch.save(good, d / "good.pth")
    save_file(good, str(d / "good.safetensors"))
    files = {}
    data = (d / "good.pth").read_bytes()
    files["truncated_pth"] = d / "truncated.pth"
    files["truncated_pth"].write_bytes(data[: len(data) // 2])
    sdata = (d / "good.safetensors").read_bytes()
    files["truncated_safetensors"] = d / "truncated.safetensors"
    files["truncated_safetensors"].write_bytes(sdata[:-10])
    files["tampered_header"] = d / "tampered.safetensors"
    files["tampered_header"].write_bytes(sdata[:8] + b"#" + sdata[9:])
    files["foreign_text"] = d / "notes.pth"
    files["foreign_text"].write_text("definitely not weights\n")
    files["foreign_image"] = d / "image.safetensors"
    photo(16, 16).save(files["foreign_image"], format="PNG")
    files["pickled_code"] = d / "evil.pth"
    torch.save({"conv.weight": torch.zeros(1), "x": Payload()}, files["pickled_code"])
    files["nan"] = d / "nan.pth"
    torch.save({"conv.weight": torch.full((2,), float("nan"))}, files["nan"])
    files["not_a_state_dict"] = d / "list.pth"
    torch.save([torch.zeros(2)], files["not_a_state_dict"])
    files["empty"] = d / "empty.pth"
    files["empty"].write_bytes(b"")
    files["directory"] = d / "adir.pth"
    files["directory"].mkdir()
    return d, files, marker


WEIGHT_CASES = {
    "truncated_pth": r"truncated or damaged",
    "truncated_safetensors": r"truncated safetensors",
    "tampered_header": r"not a safetensors file|damaged",
    "foreign_text": r"not a weights file",
    "foreign_image": r"not a safetensors file",
    "pickled_code": r"refused.*could run code",
    "nan": r"NaN or infinite",
    "not_a_state_dict": r"no state dict of tensors",
    "empty": r"empty weights file",
    "directory": r"is a directory",
}


@pytest.mark.parametrize("case", list(WEIGHT_CASES))
def test_bad_weights_refused(case, weight_files):
    from cvtools.errors import WeightsError
    from cvtools.weights import load_state_dict_file

    d, files, marker = weight_files
    with pytest.raises(WeightsError, match=WEIGHT_CASES[case]) as info:
        load_state_dict_file(files[case])
    msg = str(info.value)
    assert "\n" not in msg and files[case].name in msg
    assert not marker.exists(), "unpickling ran code"


def test_good_weights_load_by_content_not_name(weight_files, tmp_path):
    import shutil

    import torch

    from cvtools.weights import load_state_dict_file

    d, files, marker = weight_files
    for name in ("good.pth", "good.safetensors"):
        sd = load_state_dict_file(d / name)
        assert set(sd) == {"conv.weight", "conv.bias"} and sd["conv.bias"].eq(0).all()
    swapped = tmp_path / "really_safetensors.pth"
    shutil.copy(d / "good.safetensors", swapped)
    assert torch.equal(load_state_dict_file(swapped)["conv.weight"], load_state_dict_file(d / "good.pth")["conv.weight"])


def test_checksum_pinning(weight_files, tmp_path):
    import shutil

    from cvtools.errors import WeightsError
    from cvtools.weights import load_state_dict_file, sha256_file

    d, files, marker = weight_files
    good = d / "good.pth"
    digest = sha256_file(good)
    assert "conv.weight" in load_state_dict_file(good, expected_sha256=digest)
    tampered = tmp_path / "tampered.pth"
    shutil.copy(good, tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_state_dict_file(tampered, expected_sha256=digest)


def test_embedded_backbone_weights_are_pinned(tmp_path, monkeypatch):
    """The embedded EfficientNet-Lite0 file is checked against its pinned SHA-256: a damaged
    copy in its place is refused before loading."""
    import shutil

    from cvtools import backbones
    from cvtools.errors import WeightsError

    real = backbones.embedded_weights_path("efficientnet_lite0")
    if real is None:
        pytest.skip("embedded weights package not installed")
    fake = tmp_path / "lite0.pth"
    shutil.copy(real, fake)
    with open(fake, "r+b") as f:
        f.seek(-100, os.SEEK_END)
        f.write(b"\0" * 50)
    monkeypatch.setattr(backbones, "embedded_weights_path", lambda name: str(fake))
    with pytest.raises(WeightsError, match="checksum mismatch.*reinstall"):
        backbones.load_backbone("efficientnet_lite0", device="cpu", precision="fp32")


@pytest.mark.parametrize("case", ["truncated_pth", "pickled_code"])
def test_bad_backbone_weights_on_the_command_line(case, weight_files, corpus, run_cli):
    d, files, marker = weight_files
    _, cases = corpus
    r = run_cli("classify", cases["good"].path, "--weights", files[case], "--device", "cpu")
    _no_traceback(r)
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and files[case].name in r.stderr
    assert re.search(WEIGHT_CASES[case], r.stderr), r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("case", ["truncated_safetensors", "pickled_code", "foreign_image"])
def test_bad_style_weights_on_the_command_line(case, weight_files, corpus):
    d, files, marker = weight_files
    _, cases = corpus
    _command("stylize")
    r = _invoke(["stylize", cases["good"].path, "--style", files[case], "--device", "cpu"])
    _no_traceback(r)
    assert r.exit_code == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and files[case].name in lines[0], r.stderr
    assert not marker.exists()
    assert _outputs_for(cases["good"].path.parent, "good") == []


# ----------------------------------------------------------------------------- CLI hygiene


@pytest.mark.slow
def test_broken_pipe_is_quiet(corpus, tmp_path):
    """`cvtools classify many | head -1`: no traceback, no error spew when the reader goes away."""
    _, cases = corpus
    imgs = []
    for i in range(6):
        p = tmp_path / f"i{i}.png"
        photo(32, 32, seed=i).save(p)
        imgs.append(str(p))
    proc = subprocess.run(
        f"{sys.executable} -m cvtools classify {' '.join(imgs)} --weights random --device cpu -q | head -c 1",
        shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr, proc.stderr


def test_control_characters_in_file_names_stay_on_one_line(tmp_path, run_cli):
    bad = tmp_path / "evil\nname.jpg"
    bad.write_text("not an image")
    r = run_cli("classify", bad, "--weights", "random", "--device", "cpu")
    assert r.exit_code == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "evil\\nname.jpg" in lines[0], r.stderr


ODD_NAMES = ["evil\nname.png", "cr\rname.png", "tab\tname.png", "slash\u2215like.png", "rtl\u202egnp.png"]


def test_safe_path_quotes_only_odd_names():
    from cvtools.errors import safe_path

    assert safe_path("photos/my cat.jpg") == "photos/my cat.jpg"
    assert safe_path("ünïcode/漢.png") == "ünïcode/漢.png"
    assert safe_path("a\nb.png") == "'a\\nb.png'"
    assert safe_path("a\u2215b.png") == "'a\\u2215b.png'"  # not a folder 'a'
    assert safe_path(" x.png") == "' x.png'" and safe_path("x.png ") == "'x.png '"
    assert safe_path("x\u202egnp.exe") == "'x\\u202egnp.exe'"


@pytest.mark.parametrize("command", [pytest.param(c.name, marks=pytest.mark.slow) if c.name == "dream" else c.name
                                     for c in COMMANDS])  # dream: 6 s on 2 cores
def test_odd_file_names_are_quoted_on_one_line(command, corpus, tmp_path):
    """Names with newlines, carriage returns, slash look-alikes or direction overrides: each
    bad file's error is one line naming it repr-style; good files with such names are processed."""
    d, cases = corpus
    cmd = _command(command)
    bad, good = [], []
    for i, name in enumerate(ODD_NAMES):
        (tmp_path / f"bad{name}").write_text("not an image")
        bad.append(tmp_path / f"bad{name}")
        photo(40, 32, seed=i).save(tmp_path / f"good{name}", format="PNG")
        good.append(tmp_path / f"good{name}")
    out = tmp_path / "out"
    r = _invoke(cmd.argv([str(p) for p in bad + good], out, _extra(d, cmd)))
    _no_traceback(r)
    assert r.exit_code == 1
    errors = [l for l in r.stderr.split("\n") if "error" in l]
    assert len(errors) == len(bad), r.stderr
    from cvtools.errors import safe_path

    for p, line in zip(bad, errors):
        shown = safe_path(p)
        assert shown.startswith("'") and shown.endswith(".png'"), shown  # quoted, repr-style
        assert f"error: {shown}: not a recognised image" in line, (p.name, line)
        assert "\r" not in line and "\u202e" not in line and "\u2215" not in line, line
    if cmd.writes:
        assert len([p for p in out.iterdir() if p.name.startswith("good")]) == len(good)


def test_guide_directory_is_one_line(corpus, tmp_path):
    d, cases = corpus
    _command("dream")
    (tmp_path / "guides").mkdir()
    r = _invoke(["dream", cases["good"].path, "--guide", tmp_path / "guides", "--weights", "random", "--device", "cpu",
                 "-o", tmp_path / "out/"])
    _no_traceback(r)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.exit_code == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("cvtools: error: --guide ") and str(tmp_path / "guides") in lines[0], lines
    assert "directory" in lines[0] and not (tmp_path / "out").exists()


def test_no_progress_bars_in_pipes(corpus, tmp_path):
    """stderr to a pipe (a log file, `2>&1 | tee`): plain lines, no bar redraws."""
    d, cases = corpus
    cmd = _command("stylize")
    folder = _folder(tmp_path, n=3)
    r = subprocess.run([sys.executable, "-m", "cvtools", *cmd.argv([str(folder)], tmp_path / "out", _extra(d, cmd))],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "\x1b" not in r.stderr and "|" not in r.stderr, repr(r.stderr)
    assert r.stderr.startswith("cvtools: done: 3 images in "), r.stderr


def test_slow_rates_read_in_seconds_per_image():
    from cvtools.cli.common import BatchReport

    assert BatchReport(done=["a", "b"], started=0.0, ended=50.0).rate_line() == "2 images in 50.0 s (25.0 s/img)"
    assert BatchReport(done=["a"] * 30, started=0.0, ended=10.0).rate_line() == "30 images in 10.0 s (3.0 img/s)"
    assert "1.0 img/s" in BatchReport(done=["a"] * 10, started=0.0, ended=10.0).rate_line()


# ----------------------------------------------------------------------------- loader corner cases


def test_fifo_and_device_inputs_are_refused_without_blocking(tmp_path):
    from cvtools.errors import ImageError
    from cvtools.io.decode import load_image

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    old = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("load_image blocked on a FIFO"))
    signal.alarm(10)
    try:
        with pytest.raises(ImageError, match="pipe.png: not a regular file"):
            load_image(fifo)
        with pytest.raises(ImageError, match="not a regular file"):
            load_image("/dev/zero")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("head, name", [
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC/HEIF"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "PostScript/EPS"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
])
def test_unsupported_formats_are_named(tmp_path, head, name):
    """EPS in particular must never reach Pillow's EPS plugin (it runs Ghostscript)."""
    from cvtools.errors import ImageError
    from cvtools.io.decode import load_image

    p = tmp_path / "photo.jpg"
    p.write_bytes(head + b"\0" * 64)
    with pytest.raises(ImageError, match=re.escape(f"{name} files are not supported")):
        load_image(p)


def test_damaged_header_of_a_known_format_says_so(tmp_path):
    from cvtools.errors import ImageError
    from cvtools.io.decode import load_image

    p = tmp_path / "x.gif"
    p.write_bytes(b"GIF89a" + b"\xff" * 3)
    with pytest.raises(ImageError, match="damaged GIF file|cannot decode"):
        load_image(p)


def test_unknown_output_extension_is_refused_before_any_work(corpus, run_cli, tmp_path):
    d, cases = corpus
    _command("dream")
    r = _invoke(["dream", cases["good"].path, "--weights", "random", "--device", "cpu", "--octaves", "1",
                 "--steps", "1", "-o", tmp_path / "result.xyz"])
    _no_traceback(r)
    assert r.exit_code == 1 and "unknown output format '.xyz'" in r.stderr
    assert list(tmp_path.iterdir()) == []
