"""The batch runner (cvtools.batch) and the CLI's run_batch over it: the staged pipeline (decode
and encode in worker threads, the device work on the main thread) gives the same outputs as one
file after another, per-file errors from every stage, input order, bounded look-ahead; grouping
into batches; the callbacks; and ``cvtools stylize`` through it."""

from __future__ import annotations

import threading
from pathlib import Path

import click
import pytest
from badinputs import photo

from cvtools import batch
from cvtools.batch import StagedWork, io_threads
from cvtools.cli.common import run_batch

# ----------------------------------------------------------------------------- run_batch itself


def _files(d: Path, n: int):
    d.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        p = d / f"f{i}.png"
        p.write_bytes(b"not read by these tests")
        paths.append(p)
    return paths


class _Recorder:
    """Staged work of plain Python functions that records where and in which order each stage ran."""

    def __init__(self, fail=None, threads=None):
        self.fail = fail or {}  # file name -> stage that raises for it
        self.threads = threads
        self.lock = threading.Lock()
        self.events = []
        self.loads_started = 0
        self.computed = 0
        self.max_ahead = 0
        self.saving = 0
        self.max_unsaved = 0

    def _record(self, stage, path):
        with self.lock:
            self.events.append((stage, path.name, threading.current_thread() is threading.main_thread()))
        if self.fail.get(path.name) == stage:
            kind = {"prepare": ValueError, "load": OSError, "compute": RuntimeError, "save": OSError}[stage]
            raise kind(f"{stage} failed for this file")

    def prepare(self, path):
        self._record("prepare", path)

    def load(self, path):
        with self.lock:
            self.loads_started += 1
            self.max_ahead = max(self.max_ahead, self.loads_started - self.computed)
        self._record("load", path)
        return f"item:{path.name}"

    def __call__(self, path, item):
        assert item == f"item:{path.name}"
        self._record("compute", path)
        with self.lock:
            self.computed += 1
            self.saving += 1
            self.max_unsaved = max(self.max_unsaved, self.saving)
        return f"pending:{path.name}"

    def save(self, path, pending):
        assert pending == f"pending:{path.name}"
        try:
            self._record("save", path)
        finally:
            with self.lock:
                self.saving -= 1
        return f"note {path.name}"

    def work(self) -> StagedWork:
        """These stages as the staged work the runner takes."""
        return StagedWork(load=self.load, compute=self.__call__, save=self.save, prepare=self.prepare,
                          threads=self.threads)


def _stages(rec, stage):
    return [(name, main) for s, name, main in rec.events if s == stage]


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_staged_run_reports_every_file_once_in_input_order(tmp_path, capsys, threads):
    paths = _files(tmp_path / "in", 9)
    rec = _Recorder(threads=threads)
    report = run_batch([str(p) for p in paths], rec.work(), "test")
    out = capsys.readouterr()
    assert report.exit_code == 0 and report.done == [str(p) for p in paths] and report.failed == []
    assert out.out.splitlines() == [f"note {p.name}" for p in paths]
    # the one summary line of a folder run: count, time and rate
    assert len(out.err.splitlines()) == 1 and out.err.startswith("cvtools: done: 9 images in ")
    assert "img/s)" in out.err
    for stage in ("prepare", "compute"):  # both on the main thread, in input order
        assert _stages(rec, stage) == [(p.name, True) for p in paths]
    for stage in ("load", "save"):
        ran = _stages(rec, stage)
        assert sorted(name for name, _ in ran) == sorted(p.name for p in paths)
        assert all(main == (threads == 0) for _, main in ran), ran
    if threads:
        assert rec.max_ahead <= threads + 2, rec.max_ahead  # bounded look-ahead: bounded memory
        assert rec.max_unsaved <= 2 * threads + 1, rec.max_unsaved


def test_errors_from_every_stage_name_their_file_and_the_batch_goes_on(tmp_path, capsys):
    paths = _files(tmp_path / "in", 8)
    fail = {"f1.png": "prepare", "f2.png": "load", "f4.png": "compute", "f5.png": "save"}
    rec = _Recorder(fail=fail, threads=2)
    report = run_batch([str(p) for p in paths], rec.work(), "test")
    out = capsys.readouterr()
    assert report.exit_code == 1
    assert sorted(report.failed) == sorted(str(tmp_path / "in" / n) for n in fail)
    assert sorted(report.done + report.failed) == sorted(str(p) for p in paths)
    errors = [line for line in out.err.splitlines() if line.startswith("cvtools: error: ")]
    assert len(errors) == len(fail), out.err
    for line, name in zip(errors, sorted(fail)):  # in input order, one line each, naming the file
        assert name in line and "failed" in line, line
    assert "4 of 8 inputs failed" in out.err
    assert out.out.splitlines() == [f"note {p.name}" for p in paths if p.name not in fail]
    assert "f1.png" not in {name for name, _ in _stages(rec, "load")}  # refused before decoding
    # a failed load stops nothing: every later file was loaded
    assert {p.name for p in paths[3:]} <= {name for name, _ in _stages(rec, "load")}


def test_serial_can_be_forced_from_the_environment(tmp_path, monkeypatch, capsys):
    paths = _files(tmp_path / "in", 4)
    monkeypatch.delenv("CVTOOLS_IO_THREADS", raising=False)
    assert 1 <= io_threads(StagedWork(load=len, compute=len, save=len)) <= 4  # the default: a few threads
    rec = _Recorder(threads=4)
    assert io_threads(rec.work()) == 4
    monkeypatch.setenv("CVTOOLS_IO_THREADS", "0")
    assert io_threads(rec.work()) == 0
    run_batch([str(p) for p in paths], rec.work(), "test", quiet=True)
    assert all(main for _, _, main in rec.events)
    assert [s for s, _, _ in rec.events] == ["prepare", "load", "compute", "save"] * 4


def test_interrupt_keeps_finished_saves_and_starts_nothing_new(tmp_path, capsys):
    paths = _files(tmp_path / "in", 10)

    class Interrupting(_Recorder):
        def __call__(self, path, item):
            if path.name == "f4.png":
                raise KeyboardInterrupt
            return super().__call__(path, item)

    rec = Interrupting(threads=2)
    with pytest.raises(click.exceptions.Exit) as exc:
        run_batch([str(p) for p in paths], rec.work(), "test", quiet=True)
    assert exc.value.exit_code == 130
    # saves under way finish (atomic writes); the ones not started yet are dropped; nothing new starts
    saved = [name for name, _ in _stages(rec, "save")]
    assert set(saved) <= {"f0.png", "f1.png", "f2.png", "f3.png"}
    assert "f5.png" not in [name for name, _ in _stages(rec, "compute")]
    assert f"interrupted after {len(saved)} of 10 inputs" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the library runners


@pytest.mark.parametrize("threads", [0, 2])
def test_run_stages_on_any_iterable_in_order_with_errors_per_item(threads):
    lock = threading.Lock()
    pulled = []
    state = {"computed": 0, "max_ahead": 0}

    def frames():  # a lazy source, like a video decoder: pulled only as far as the look-ahead
        for i in range(12):
            with lock:
                pulled.append(i)
                state["max_ahead"] = max(state["max_ahead"], len(pulled) - state["computed"])
            yield i

    def load(i):
        if i == 3:
            with lock:
                state["computed"] += 1  # it never reaches the computation: no longer ahead of it
            raise OSError("cannot decode 3")
        return i * 10

    def compute(i, a):
        with lock:
            state["computed"] += 1
        if i == 5:
            raise RuntimeError("out of memory at 5")
        return a + 1

    def save(i, b):
        if i == 7:
            raise OSError("disk full at 7")
        return f"saved {b}"

    outcomes = list(batch.run_stages(frames(), load, compute, save, threads=threads))
    assert [o.item for o in outcomes] == list(range(12))
    assert {o.item: str(o.error) for o in outcomes if not o.ok} == {3: "cannot decode 3", 5: "out of memory at 5",
                                                                     7: "disk full at 7"}
    assert [o.value for o in outcomes if o.ok] == [f"saved {i * 10 + 1}" for i in range(12) if i not in (3, 5, 7)]
    # read lazily: never more than the loaded look-ahead (threads + 1) plus the one being fed past the computation
    assert state["max_ahead"] <= threads + 2, state


def test_run_stages_one_writer_saves_in_input_order():
    import time

    saved = []

    def load(i):
        time.sleep(0.002 * (i % 3))  # loads finish out of order
        return i

    def save(i, b):
        time.sleep(0.001 * ((7 * i) % 4))
        saved.append(i)
        return i

    out = [o.value for o in batch.run_stages(range(20), load, lambda i, a: a, save, threads=3, save_threads=1)]
    assert out == list(range(20)) and saved == list(range(20))


def test_run_stages_stopped_early_finishes_running_saves_and_reports_them_late():
    started = threading.Event()
    release = threading.Event()
    late = []

    def save(i, b):
        if i == 0:  # item 0 is handed over only once item 1 is being saved
            started.wait(5)
        if i == 1:
            started.set()
            release.wait(5)
        return i

    gen = batch.run_stages(range(10), None, lambda i, a: a, save, threads=2, late=late.append)
    first = next(gen)
    assert first.item == 0 and started.is_set()
    release.set()
    gen.close()  # the consumer stops (as on Ctrl-C in its own code): no new item, running saves finish
    # item 1's save was running: it finished, and is reported late; at most the bounded queue was saved
    assert 1 in late and all(i >= 1 for i in late) and len(late) <= 5, late




def test_interrupt_while_a_writer_thread_starts_still_waits_for_its_save(monkeypatch):
    """Ctrl-C can land while the pool starts a writer thread (``Thread.start`` waits for the new
    thread): the pool never learns of that thread, so its shutdown does not wait for it. The save
    it took must still finish before run_stages gives the interrupt back, or a command that then
    ends the process at once (``cvtools.cli._exit_now``) leaves a half-written temporary file (CI,
    2026-12-05: ``test_sigint_during_cli_batch[stylize]``)."""
    import concurrent.futures.thread as pool_threads
    import time

    original_start = threading.Thread.start
    starts = []
    finished = []

    def start_then_interrupt(self):
        original_start(self)
        starts.append(self.name)
        if "save" in self.name and len([n for n in starts if "save" in n]) == 2:
            time.sleep(0.05)  # the new writer has taken its item: the signal arrives now
            raise KeyboardInterrupt

    def save(i, value):
        time.sleep(0.6 if i == 1 else 0.05)  # item 1's save is under way when the interrupt comes
        finished.append(i)
        return i

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    assert pool_threads.threading.Thread is threading.Thread
    gen = batch.run_stages(range(6), None, lambda i, a: a, save, threads=2)
    with pytest.raises(KeyboardInterrupt):
        list(gen)
    # every save that started has finished by the time the interrupt reaches the caller
    assert sorted(finished) == [0, 1], finished
    assert not [t.name for t in threading.enumerate() if t.name in starts and t.is_alive()]  # this run's threads


def test_prefetch_keeps_order_and_raises_in_place():
    def decoder():
        yield from range(5)
        raise ValueError("truncated stream")

    got = []
    with pytest.raises(ValueError, match="truncated"):
        for x in batch.prefetch(decoder(), ahead=2):
            got.append(x)
    assert got == list(range(5))
    assert list(batch.prefetch(iter(range(100)), ahead=3))[:4] == [0, 1, 2, 3]


def test_run_batched_groups_by_key_retries_a_failed_batch_alone_and_touches_only_its_items():
    prepared, batches = [], []
    items = [f"{shape}{i}" for i, shape in enumerate("aabab" "bbaaa")]  # a0 a1 b2 a3 b4 b5 b6 a7 a8 a9

    def prepare(name):
        prepared.append(name)
        if name == "b4":
            raise OSError("b4 is corrupt")
        return {"x": _Shape(name[0]), "name": name}

    def compute(ps):
        batches.append([p["name"] for p in ps])
        if "a7" in batches[-1]:
            raise RuntimeError("a7 is too big")
        return [p["name"].upper() for p in ps]

    outcomes = list(batch.run_batched(items, prepare, compute, lambda item, p, r: r + "!", batch_size=3))
    assert [o.item for o in outcomes] == items
    assert {o.item: str(o.error) for o in outcomes if not o.ok} == {"b4": "b4 is corrupt", "a7": "a7 is too big"}
    assert [o.value for o in outcomes if o.ok] == [n.upper() + "!" for n in items if n not in ("b4", "a7")]
    assert sorted(prepared) == sorted(items)  # each item prepared once, nothing else
    assert batches[:2] == [["a0", "a1", "a3"], ["b2", "b5", "b6"]]  # same shape, input order, not the bad one
    assert all(len({n[0] for n in b}) == 1 and len(b) <= 3 for b in batches)
    assert batches[2:] == [["a7", "a8", "a9"], ["a7"], ["a8"], ["a9"]]  # a failed batch is retried one by one


@pytest.mark.parametrize("threads", [0, 3])
def test_run_batched_loads_on_threads_and_keeps_everything_else_in_order(threads):
    """With ``load``: prepare (naming) on this thread in input order, load on worker threads (or
    right after prepare with 0), the same batches, outcomes and failures as one thread gives."""
    items = [f"{shape}{i}" for i, shape in enumerate("aabab" "bbaaa")]
    prepared, loaded_on, batches = [], {}, []
    main = threading.current_thread()
    gate = threading.Event()

    def prepare(name):
        assert threading.current_thread() is main
        prepared.append(name)
        return {"name": name}

    def load(p):
        if threads and p["name"] == "a0":
            assert gate.wait(5)  # the first item's load waits until a later one has loaded
        loaded_on[p["name"]] = threading.current_thread()
        if p["name"] == "a1":
            gate.set()
        if p["name"] == "b4":
            raise OSError("b4 is corrupt")
        p["x"] = _Shape(p["name"][0])
        return p

    def compute(ps):
        assert threading.current_thread() is main
        batches.append([p["name"] for p in ps])
        return [p["name"].upper() for p in ps]

    if not threads:
        gate.set()
    outcomes = list(batch.run_batched(items, prepare, compute, lambda item, p, r: r + "!", batch_size=3,
                                      load=load, threads=threads))
    assert prepared == items  # in input order, each once
    assert [o.item for o in outcomes] == items
    assert {o.item: str(o.error) for o in outcomes if not o.ok} == {"b4": "b4 is corrupt"}
    assert [o.value for o in outcomes if o.ok] == [n.upper() + "!" for n in items if n != "b4"]
    # the same batches either way: each candidate's load is waited for (deterministic results)
    assert batches == [["a0", "a1", "a3"], ["b2", "b5", "b6"], ["a7", "a8", "a9"]]
    on_main = {n for n, t in loaded_on.items() if t is main}
    assert on_main == (set(items) if not threads else set())


class _Shape:
    def __init__(self, kind):
        self.shape = (3, 8, 8) if kind == "a" else (3, 8, 16)


def test_run_reports_through_callbacks_and_prints_nothing(tmp_path, capsys):
    paths = _files(tmp_path / "in", 5)
    events = []

    def work(path):
        if path.name == "f2.png":
            raise ValueError("bad pixels")
        return f"did {path.name}"

    report = batch.run([str(tmp_path / "in"), str(tmp_path / "nothing-*.png")], work,
                       on_done=lambda p, note: events.append(("done", note)),
                       on_fail=lambda p, msg, exc: events.append(("fail", msg)),
                       on_note=lambda msg: events.append(("note", msg)),
                       progress=lambda n, total: events.append(("progress", n, total)))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert report.done == [str(p) for p in paths if p.name != "f2.png"]
    assert report.failed[1:] == [str(paths[2])] and report.exit_code == 1
    fails = [e[1] for e in events if e[0] == "fail"]
    assert "nothing-*.png" in fails[0] and fails[1] == f"{paths[2]}: ValueError: bad pixels"
    assert [e for e in events if e[0] == "progress"] == [("progress", n, 5) for n in range(6)]
    assert [e[1] for e in events if e[0] == "done"] == [f"did {p.name}" for p in paths if p.name != "f2.png"]
    assert report.closing_lines()[0] == "2 of 6 inputs failed"


def test_work_says_what_it_is_and_videos_keep_its_kind(tmp_path):
    """One explicit protocol: a Work runs itself over the files; a plain function is per-file
    work; anything else is refused, even with stage-like attributes (no sniffing). Videos join a
    work as the same kind of work, with the media extensions searched in folders."""
    from cvtools.batch import BatchedWork, PerFileWork, as_work
    from cvtools.video.jobs import media_extensions, with_videos

    def per_file(path):
        return f"did {path.name}"

    class Lookalike:  # stage names, but not a StagedWork: not taken for one
        load = save = prepare = staticmethod(len)

    assert isinstance(as_work(per_file), PerFileWork) and as_work(per_file).workers(5) == 0
    staged = _Recorder(threads=3).work()
    assert as_work(staged) is staged and staged.workers(5) == 3 and staged.workers(1) == 0
    with pytest.raises(TypeError, match="not a batch work: Lookalike"):
        as_work(Lookalike())
    paths = _files(tmp_path / "in", 3)
    report = batch.run([str(tmp_path / "in")], per_file)
    assert report.done == [str(p) for p in paths]

    def make(*args):
        raise AssertionError("no video here")

    batched = BatchedWork(prepare=len, compute=list, finish=lambda path, item, result: result, batch_size=5)
    for work, kind in ((per_file, PerFileWork), (staged, StagedWork), (batched, BatchedWork)):
        videos = with_videos(work, make, "x")
        assert type(videos) is kind and videos.extensions == media_extensions()
    assert with_videos(staged, make, "x").threads == 3 and with_videos(batched, make, "x").batch_size == 5
    recorded = _Recorder(threads=0)
    report = batch.run([str(p) for p in paths], with_videos(recorded.work(), make, "x"))
    assert report.done == [str(p) for p in paths]
    assert [s for s, _, _ in recorded.events] == ["prepare", "load", "compute", "save"] * 3


def test_run_interrupted_raises_with_the_report(tmp_path):
    paths = _files(tmp_path / "in", 4)

    def work(path):
        if path.name == "f2.png":
            raise KeyboardInterrupt
        return None

    with pytest.raises(batch.Interrupted) as stop:
        batch.run([str(p) for p in paths], work)
    assert stop.value.report.done == [str(p) for p in paths[:2]]
    assert stop.value.message.startswith("interrupted after 2 of 4 inputs")


# ----------------------------------------------------------------------------- cvtools stylize


@pytest.fixture(scope="module")
def tiny_style(tmp_path_factory):
    import torch

    from cvtools.style.network import TransformerNet
    from cvtools.style.records import save_style_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("style") / "tiny.safetensors"
    save_style_weights(TransformerNet(width=0.25), path, name="tiny")
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(6):
        im = photo(64 + 8 * i, 48, seed=i)
        if i % 2:
            im.save(d / f"p{i}.jpg", quality=90)
        else:
            im.save(d / f"p{i}.png")
    return d


def _stylize(run_cli, monkeypatch, threads, inputs, out, style, *extra):
    monkeypatch.setenv("CVTOOLS_IO_THREADS", str(threads))
    return run_cli("stylize", *inputs, "--style", style, "--device", "cpu", "--tile", "off", "-o", f"{out}/", *extra)


def test_stylize_staged_writes_the_same_files_as_serial(run_cli, monkeypatch, tmp_path, folder, tiny_style):
    runs = {}
    for threads in (0, 3):
        out = tmp_path / f"out{threads}"
        r = _stylize(run_cli, monkeypatch, threads, [folder], out, tiny_style)
        assert r.exit_code == 0, r.stderr
        runs[threads] = (r, out)
    (serial, a), (staged, b) = runs[0], runs[3]
    names = sorted(p.name for p in a.iterdir())
    assert len(names) == 6 and names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    notes = [line.split(" -> ")[0] for line in staged.stdout.splitlines()]
    assert notes == [str(p) for p in sorted(folder.iterdir())]  # one note per file, input order
    assert staged.stdout.replace(str(b), "") == serial.stdout.replace(str(a), "")


def test_stylize_corrupt_file_in_the_middle(run_cli, monkeypatch, tmp_path, folder, tiny_style):
    (folder / "p3.jpg").write_bytes((folder / "p3.jpg").read_bytes()[:200])  # truncated JPEG
    out = tmp_path / "out"
    r = _stylize(run_cli, monkeypatch, 2, [folder], out, tiny_style)
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "p3.jpg" in errors[0] and errors[0].startswith("cvtools: error: "), r.stderr
    assert "1 of 6 inputs failed" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}_tiny{ext}" for i, ext in
                                                     [(0, ".png"), (1, ".jpg"), (2, ".png"), (4, ".png"), (5, ".jpg")]]


def test_stylize_save_failure_is_reported_for_that_file(run_cli, monkeypatch, tmp_path, folder, tiny_style):
    import cvtools.io.atomic as atomic
    from cvtools.errors import ImageError

    real = atomic.save_image

    def flaky(path, image, **kwargs):
        if Path(path).name.startswith("p2_"):
            raise ImageError(path, "cannot write (No space left on device)")
        if Path(path).name.startswith("p4_"):
            raise OSError("the disk went away")
        return real(path, image, **kwargs)

    monkeypatch.setattr(atomic, "save_image", flaky)
    out = tmp_path / "out"
    r = _stylize(run_cli, monkeypatch, 2, [folder], out, tiny_style)
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("cvtools: error: ")]
    assert len(errors) == 2, r.stderr
    assert "p2_tiny.png" in errors[0] and "No space left" in errors[0]
    assert "p4.png" in errors[1] and "the disk went away" in errors[1]
    assert sorted(p.name for p in out.iterdir()) == ["p0_tiny.png", "p1_tiny.jpg", "p3_tiny.jpg", "p5_tiny.jpg"]
    noted = [line.split(" -> ")[0] for line in r.stdout.splitlines()]
    assert noted == [str(folder / n) for n in ("p0.png", "p1.jpg", "p3.jpg", "p5.jpg")]


def test_a_folders_subfolders_are_mirrored_under_the_output_directory(run_cli, monkeypatch, tmp_path, tiny_style):
    """QA: in/sub/b.jpg and in/sub2/b.jpg went flat into out/ (the second as b_tiny-2.png with a
    note), so which output came from which subfolder was lost. Found by searching a folder:
    out/sub/b_tiny.png, out/sub2/b_tiny.png; named one by one or by a pattern: flat, as before."""
    tree = tmp_path / "in"
    for rel, seed in (("a.png", 1), ("sub/b.png", 2), ("sub2/b.png", 3), ("sub2/deeper/c.png", 4)):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        photo(40, 32, seed=seed).save(tree / rel)
    before = sorted(tree.rglob("*"))
    out = tmp_path / "out"
    r = _stylize(run_cli, monkeypatch, 0, [tree], out, tiny_style)
    assert r.exit_code == 0 and "is the output for" not in r.stderr, r.stderr
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert made == ["a_tiny.png", "sub/b_tiny.png", "sub2/b_tiny.png", "sub2/deeper/c_tiny.png"]
    assert sorted(tree.rglob("*")) == before  # nothing written inside the input folder
    r = _stylize(run_cli, monkeypatch, 0, [tree], out, tiny_style)  # a re-run finds them done
    assert r.exit_code == 0 and "skipped 4 already done" in r.stderr, r.stderr
    flat = tmp_path / "flat"
    r = _stylize(run_cli, monkeypatch, 0, [tree / "sub" / "b.png", tree / "sub2" / "b.png"], flat, tiny_style)
    assert r.exit_code == 0 and sorted(p.name for p in flat.iterdir()) == ["b_tiny-2.png", "b_tiny.png"]
    pattern = tmp_path / "pattern"
    r = _stylize(run_cli, monkeypatch, 0, [f"{tree}/sub*/b.png"], pattern, tiny_style)
    assert r.exit_code == 0 and sorted(p.name for p in pattern.iterdir()) == ["b_tiny-2.png", "b_tiny.png"]
    inside = tree / "styled"  # an output directory inside the input folder: flat, as before
    r = _stylize(run_cli, monkeypatch, 0, [tree], inside, tiny_style)
    assert r.exit_code == 0 and all(p.is_file() for p in inside.iterdir()) and len(list(inside.iterdir())) == 4


def test_stylize_two_inputs_one_output_name_get_numbered_names_in_input_order(run_cli, monkeypatch, tmp_path,
                                                                              tiny_style):
    """a/x.png, b/x.png, c/x.png into one -o directory: x_tiny.png, x_tiny-2.png, x_tiny-3.png in
    input order (the names are decided on the main thread before any loading), one note each."""
    for sub, seed in (("a", 1), ("b", 2), ("c", 3)):
        (tmp_path / sub).mkdir()
        photo(40, 32, seed=seed).save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    r = _stylize(run_cli, monkeypatch, 3, [tmp_path / s / "x.png" for s in "abc"], out, tiny_style)
    assert r.exit_code == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "is the output for" in line]
    assert len(notes) == 2 and all(str(tmp_path / "a" / "x.png") in n for n in notes), r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["x_tiny-2.png", "x_tiny-3.png", "x_tiny.png"]
    assert [line.split(" -> ") for line in r.stdout.splitlines()] == [
        [str(tmp_path / s / "x.png"), str(out / n)] for s, n in zip("abc", ("x_tiny.png", "x_tiny-2.png", "x_tiny-3.png"))]
