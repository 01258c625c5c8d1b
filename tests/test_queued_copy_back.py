"""A folder's batches on a GPU: the copy back is queued and the writer waits for it
(``stylize_batch(..., queued=True)``, ``cvtools.style.job.QUEUED_COPY_BACK``).

On the CPU the queued objects are stood in for by ones that hold the finished tensors; what is
checked there is the job's plumbing: the batch path asks for queued results, the writer threads
(not the thread that drives the device) wait for them, and the files are byte for byte those of
the waited-for path. On a CUDA machine the real objects are checked against ``batch_results``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from badinputs import photo

from cvtools import batch


class _StandIn:
    """What a QueuedPicture is to the job: ``get()`` gives the picture (and records its thread)."""

    def __init__(self, tensor, threads):
        self.tensor, self.threads = tensor, threads

    def get(self):
        self.threads.append(threading.current_thread().name)
        return self.tensor


def _run(st, paths, out: Path, queued: bool, monkeypatch):
    from cvtools.io.naming import Outputs
    from cvtools.style import job
    from cvtools.style.job import stylize_provenance, stylize_work

    asked, waited = [], []
    real = st.stylize_batch

    def stylize_batch(images, **kw):
        asked.append(kw.get("queued"))
        outs = real(images, **{k: v for k, v in kw.items() if k != "queued"})
        return [_StandIn(o, waited) for o in outs] if kw.get("queued") else outs

    with monkeypatch.context() as mp:
        mp.setattr(st, "stylize_batch", stylize_batch)
        mp.setattr(job, "QUEUED_COPY_BACK", queued)
        mp.setenv("CVTOOLS_IO_THREADS", "2")
        mp.setenv("CVTOOLS_STYLIZE_BATCH", "3")
        outputs = Outputs(stylize_provenance("mona"))
        work = stylize_work(st, output=str(out), many=True, inputs=paths, quiet=True, outputs=outputs, ext=".png")
        report = batch.run([str(p) for p in paths], work, outputs=outputs)
    assert report.failed == [] and len(report.done) == len(paths)
    return asked, waited


def test_queued_results_are_waited_for_by_the_writers_and_written_as_before(tmp_path, monkeypatch):
    from cvtools.style.stylize import Stylizer

    st = Stylizer("mona", device="cpu", precision="fp32")
    (tmp_path / "in").mkdir()
    paths = []
    for i in range(5):
        p = tmp_path / "in" / f"p{i}.png"
        photo(48, 40, seed=i).save(p)
        paths.append(p)
    asked_before, waited_before = _run(st, paths, tmp_path / "before", False, monkeypatch)
    asked, waited = _run(st, paths, tmp_path / "queued", True, monkeypatch)
    assert asked_before and not any(asked_before) and waited_before == []
    assert asked and all(asked)
    assert len(waited) == len(paths) and all(name.startswith("cvtools-save") for name in waited), waited
    for p in paths:
        name = f"{p.stem}_mona.png"
        assert (tmp_path / "queued" / name).read_bytes() == (tmp_path / "before" / name).read_bytes(), name


def test_queued_results_on_a_cpu_are_the_plain_results():
    """batch_results(queued=True) of CPU tensors: nothing to queue, the same tensors."""
    from cvtools.style.stylize import batch_results

    result = torch.rand(2, 3, 8, 8)
    result[1, 0, 0, 0] = float("nan")
    plain, queued = batch_results(result), batch_results(result, queued=True)
    assert torch.equal(plain[0], queued[0]) and queued[0].dtype == torch.uint8
    assert queued[1].is_floating_point() and not bool(torch.isfinite(queued[1]).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the queued copy is a CUDA stream's")
def test_a_queued_picture_is_what_the_waited_for_copy_gives():
    from cvtools.style.stylize import QueuedPicture, batch_results

    result = torch.rand(3, 3, 64, 48, device="cuda")
    result[2, 1, 5, 5] = float("inf")
    plain, queued = batch_results(result), batch_results(result, queued=True)
    assert all(isinstance(q, QueuedPicture) for q in queued)
    for p, q in zip(plain[:2], queued[:2]):
        assert torch.equal(p, q.get())
    bad = queued[2].get()
    assert bad.is_floating_point() and not bool(torch.isfinite(bad).all())
