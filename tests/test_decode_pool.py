"""Decoding a folder's photos in worker processes (issue 31, cvtools.io.decode_pool): the same
photos, outputs and failure messages as the loader threads, no shared memory left in /dev/shm on
any path (errors, a killed worker, an interrupted run, workers that cannot start), no torch in a
worker, and when the pool is used by default.

``CVTOOLS_DECODE_PROCESSES=N`` forces the pool on this CPU machine; the PyTorch Stylizer
(``CVTOOLS_TORCH_FREE=0``) with ``CVTOOLS_STYLIZE_BATCH=2`` runs the batched path that a GPU runs,
so both the one-photo loads (Pillow's RGB) and the batch loads (8 bits) are compared.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from badinputs import adobe_like_icc, photo
from PIL import Image

from cvtools.io import decode_pool
from cvtools.io.decode_pool import DecodePool, decode_processes

SHM = Path("/dev/shm")
needs_shm = pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm (Linux)")


def _shm_entries() -> set:
    return set(os.listdir(SHM)) if SHM.is_dir() else set()


def _workers_of_this_process() -> list:
    """Pids of live decoding workers started by this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"decode_pool import _serve" in cmdline and " Z " not in stat[-200:]:
            found.append(int(entry.name))
    return found


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Photos of every kind the decoder treats specially, two of each size for the batches."""
    d = tmp_path_factory.mktemp("photos")
    for i in range(3):
        photo(64, 48, seed=i).save(d / f"a{i}.jpg", quality=90)
    photo(64, 48, seed=5).save(d / "b_turned.jpg", quality=90, exif=_exif(6))  # 48×64 once turned
    photo(48, 64, seed=6).save(d / "b_upright.jpg", quality=90)
    rgba = np.dstack([np.asarray(photo(40, 32, seed=7)), np.linspace(0, 255, 40 * 32).reshape(32, 40)])
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(d / "c_alpha.png")
    photo(40, 32, seed=8).save(d / "c_plain.png")
    photo(64, 48, seed=9).save(d / "d_icc.jpg", quality=90, icc_profile=adobe_like_icc())
    good = io.BytesIO()
    photo(64, 48, seed=10).save(good, "JPEG", quality=90)
    (d / "e_corrupt.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])  # truncated
    photo(120, 90, seed=11).save(d / "f_too_big.png")  # 10,800 pixels: over the limit the tests set
    return d


@pytest.fixture
def cpu_env(monkeypatch):
    monkeypatch.setenv("CVTOOLS_TORCH_FREE", "0")  # the PyTorch Stylizer: the one that batches
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "10000")
    monkeypatch.setenv("CVTOOLS_IO_THREADS", "2")
    return monkeypatch


def _stylize(folder: Path, out: Path, processes: int, env, batch="2"):
    """stylize_files over the folder: (outputs' bytes by name, failure messages in input order)."""
    from cvtools import stylize_files

    env.setenv("CVTOOLS_DECODE_PROCESSES", str(processes))
    if batch is None:
        env.delenv("CVTOOLS_STYLIZE_BATCH", raising=False)
    else:
        env.setenv("CVTOOLS_STYLIZE_BATCH", batch)
    notes = []
    report = stylize_files(folder, "mona", f"{out}/", device="cpu", precision="fp32", on_note=notes.append)
    written = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    return report, written, notes


@needs_shm
@pytest.mark.parametrize("batch", ["2", None], ids=["batches", "one-at-a-time"])
def test_workers_give_the_threads_outputs_and_messages_to_the_byte(folder, tmp_path, cpu_env, batch):
    before = _shm_entries()
    threads = _stylize(folder, tmp_path / "threads", 0, cpu_env, batch)
    workers = _stylize(folder, tmp_path / "workers", 2, cpu_env, batch)
    assert threads[1] == workers[1]  # every output file, byte for byte
    assert len(threads[1]) == 8 and sorted(threads[0].failed) == sorted(workers[0].failed)
    assert threads[2] == workers[2] and len(workers[2]) == 2, workers[2]  # the same one-line messages
    assert any("e_corrupt.jpg: cannot decode image" in n for n in workers[2])
    assert any("f_too_big.png: 120x90 is 10,800 pixels, over the 10,000 pixels safety limit" in n
               for n in workers[2])
    assert _shm_entries() <= before  # no block left behind
    assert _workers_of_this_process() == []  # stylize_files ends its workers


def _stages(size=None, enlarge=False, max_pixels=-1):
    from cvtools.style.job import stylize_work

    work = stylize_work(object(), name="x", size=size, enlarge=enlarge, max_pixels=max_pixels)
    return work.load.__self__


@needs_shm
@pytest.mark.parametrize("size,enlarge", [(None, False), (40, False), (100, True)])
def test_a_workers_photo_is_the_loader_threads_photo(folder, size, enlarge, monkeypatch):
    """What load() gives the stages, field by field: Pillow's RGB and alpha, the size and, for a
    batch, the 8 bits; resized as --size says."""
    from cvtools.style.job import _Plan

    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "10000")
    threads, workers = _stages(size, enlarge), _stages(size, enlarge)
    workers.decode_processes = 2
    try:
        for plan in (None, _Plan(None, most=2)):
            threads.plan = workers.plan = plan
            for path in sorted(folder.glob("[abcd]*")):
                a, b = threads.load(str(path)), workers.load(str(path))
                assert a.size == b.size and a.rgb.mode == b.rgb.mode == "RGB", path.name
                assert np.array_equal(np.asarray(a.rgb), np.asarray(b.rgb)), path.name
                assert (a.alpha is None) == (b.alpha is None), path.name
                if a.alpha is not None:
                    assert a.alpha.mode == b.alpha.mode and np.array_equal(np.asarray(a.alpha), np.asarray(b.alpha))
                if plan is not None:
                    assert a.pixels.dtype == b.pixels.dtype and np.array_equal(a.pixels, b.pixels), path.name
        assert workers.pool is not None  # the workers did decode
    finally:
        workers.close()


@needs_shm
def test_a_killed_worker_fails_its_file_and_the_rest_go_on(folder):
    before = _shm_entries()
    pool = DecodePool(1)
    try:
        with pool.decode(folder / "a0.jpg", None, None, False) as first:
            assert first.rgb.shape == (48, 64, 3)
        (worker,) = pool._workers
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
        with pytest.raises(Exception) as failed:
            pool.decode(folder / "a1.jpg", None, None, False)
        assert str(failed.value) == f"{folder / 'a1.jpg'}: " + decode_pool.DIED.format(how="killed by SIGKILL")
        with pool.decode(folder / "a2.jpg", None, None, False) as after:  # a new worker took its place
            assert after.rgb.shape == (48, 64, 3)
    finally:
        pool.close()
    assert _shm_entries() <= before and _workers_of_this_process() == []


@pytest.mark.slow
@needs_shm
def test_workers_that_cannot_start_leave_the_decoding_to_the_threads(folder, tmp_path, cpu_env):
    cpu_env.setattr(decode_pool, "_WORKER_CODE", "import sys; sys.exit(3)")
    with pytest.raises(decode_pool.PoolUnavailable, match="exit status 3"):
        pool = DecodePool(2)
        try:
            pool.decode(folder / "a0.jpg", None, None, False)
        finally:
            pool.close()
    threads = _stylize(folder, tmp_path / "threads", 0, cpu_env)
    fallen_back = _stylize(folder, tmp_path / "fallback", 2, cpu_env)
    assert threads[1] == fallen_back[1] and threads[2] == fallen_back[2]
    assert _workers_of_this_process() == []


@needs_shm
def test_an_interrupted_run_leaves_no_block_and_no_worker(folder, tmp_path, cpu_env):
    from cvtools.batch import Interrupted

    before = _shm_entries()

    def stop_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt

    from cvtools import stylize_files

    cpu_env.setenv("CVTOOLS_DECODE_PROCESSES", "2")
    cpu_env.setenv("CVTOOLS_STYLIZE_BATCH", "2")
    with pytest.raises(Interrupted):
        stylize_files(folder, "mona", f"{tmp_path}/o/", device="cpu", precision="fp32", progress=stop_after_three)
    assert _shm_entries() <= before
    assert _workers_of_this_process() == []


def test_a_worker_imports_no_torch(folder):
    pool = DecodePool(1)
    try:
        with pool.decode(folder / "d_icc.jpg", None, 32, False):  # decoders, ICC and resizing loaded
            pass
        modules = set(pool.worker_modules())
    finally:
        pool.close()
    assert "PIL.JpegImagePlugin" in modules and "cvtools.io.decode" in modules
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}, "a worker imported torch"
    code = "import sys, cvtools.io.decode_pool, cvtools.io.decode, cvtools.ops; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_when_photos_decode_in_processes(monkeypatch):
    monkeypatch.delenv("CVTOOLS_DECODE_PROCESSES", raising=False)
    assert decode_processes(True, 512, cpus=16) == 0  # not the default until measured on a GPU host
    assert decode_processes(True, 512, cpus=16, auto=True) == 7  # the rule: as many as the loaders
    assert decode_processes(True, 64, cpus=8, auto=True) == 4
    assert decode_processes(False, 512, cpus=16, auto=True) == 0  # the network on a CPU: its cores are busy
    assert decode_processes(True, 63, cpus=16, auto=True) == 0  # too few photos to pay the start-up
    assert decode_processes(True, 512, cpus=4, auto=True) == 0  # too few cores
    monkeypatch.setenv("CVTOOLS_DECODE_PROCESSES", "3")
    assert decode_processes(False, 1, cpus=2) == 3  # said: on any device
    monkeypatch.setenv("CVTOOLS_DECODE_PROCESSES", "0")
    assert decode_processes(True, 512, cpus=16) == 0
    monkeypatch.setenv("CVTOOLS_DECODE_PROCESSES", "many")
    from cvtools.errors import UsageError

    with pytest.raises(UsageError, match="CVTOOLS_DECODE_PROCESSES"):
        decode_processes(True, 512, cpus=16)


def test_the_loaders_grow_to_the_workers_said(monkeypatch):
    from cvtools.batch import io_threads
    from cvtools.style.job import stylize_work

    monkeypatch.delenv("CVTOOLS_IO_THREADS", raising=False)
    monkeypatch.setenv("CVTOOLS_DECODE_PROCESSES", "6")
    work = stylize_work(object(), name="x", device="cpu")
    assert io_threads(work) == 6  # each loader waits for one worker
    monkeypatch.setenv("CVTOOLS_DECODE_PROCESSES", "0")
    assert io_threads(stylize_work(object(), name="x", device="cpu")) == io_threads(None)


def test_enlarging_past_the_pixel_limit_is_refused_before_resizing(tmp_path):
    """--enlarge makes pixels the file never had: the decoded-pixel limit holds for the enlarged
    size (one line naming the file and the size), and an enlargement under it goes through."""
    from PIL import Image

    from cvtools.errors import ImageError
    from cvtools.io.decode_pool import decode_resized

    p = tmp_path / "small.png"
    Image.new("RGB", (60, 40), (10, 20, 30)).save(p)
    with pytest.raises(ImageError, match=r"small.png.*--size 3000 would make it 3000x2000"):
        decode_resized(str(p), 1_000_000, 3000, True)
    rgb, _ = decode_resized(str(p), 1_000_000, 600, True)
    assert rgb.size == (600, 400)
    assert decode_resized(str(p), 1_000_000, 3000, False)[0].size == (60, 40)  # shrinking only: nothing made
