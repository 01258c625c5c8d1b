"""Folders at the GPU's pace (issue 31), checked on the CPU: the staged runner's grouping of
consecutive same-key items (batch.Grouping), the I/O thread counts, and the Stylizer's batched
forward against its one-photo path.

Tolerance of the batched path: the network runs the same fp32 arithmetic on each image of a
batch, but a convolution library may block and sum a batch of N in another order than a batch of
1, so the floats can differ in their last bits (a few ulp: ~1e-7 of the [0, 1] range). Rounding to
8 bits turns that into nothing, except for a value within that distance of a rounding boundary
(k + 0.5)/255, which can land one level either side: so at most 1 level, on a tiny share of the
pixels (here, oneDNN on x86, they are identical).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from badinputs import photo

from cvtools import batch
from cvtools.batch import Grouping, StagedWork, default_io_threads, io_threads

# ----------------------------------------------------------------------------- the runner's groups


class _Grouped:
    """Staged stages over names like "a3" (key "a"), "x5" (no key: alone), recording what ran."""

    def __init__(self, most=3, fail_group=(), fail_compute=()):
        self.most, self.fail_group, self.fail_compute = most, set(fail_group), set(fail_compute)
        self.lock = threading.Lock()
        self.groups, self.alone, self.saved = [], [], []
        self.loads = self.computed = self.max_ahead = 0

    def load(self, name):
        with self.lock:
            self.loads += 1
            self.max_ahead = max(self.max_ahead, self.loads - self.computed)
        return f"loaded {name}"

    def key(self, name, loaded):
        assert loaded == f"loaded {name}"
        return None if name[0] == "x" else (name[0], self.most)

    def compute_group(self, names, loadeds):
        assert loadeds == [f"loaded {n}" for n in names]
        self.groups.append(list(names))
        if self.fail_group & set(names):
            raise RuntimeError("this group is too big")
        with self.lock:
            self.computed += len(names)
        return [f"B{n}" for n in names]

    def compute(self, name, loaded):
        self.alone.append(name)
        if name in self.fail_compute:
            raise ValueError(f"{name} is bad")
        with self.lock:
            self.computed += 1
        return f"A{name}"

    def save(self, name, pending):
        with self.lock:
            self.saved.append(name)
        return f"saved {pending}"

    def run(self, names, threads=2, group=True):
        return list(batch.run_stages(names, self.load, self.compute, self.save, threads=threads,
                                     group=Grouping(self.key, self.compute_group) if group else None))


def test_consecutive_items_of_one_key_are_computed_together_in_input_order():
    names = ["a0", "a1", "a2", "a3", "b4", "b5", "a6", "x7", "a8", "a9", "c10"]
    g = _Grouped(most=3)
    outcomes = g.run(names)
    assert [o.item for o in outcomes] == names and all(o.ok for o in outcomes)
    assert g.groups == [["a0", "a1", "a2"], ["a3"], ["b4", "b5"], ["a6"], ["a8", "a9"], ["c10"]]
    assert g.alone == ["x7"]  # no key: the stages' own compute, as without a grouping
    assert [o.value for o in outcomes] == [f"saved {'A' if n[0] == 'x' else 'B'}{n}" for n in names]
    assert sorted(g.saved) == sorted(names)
    assert g.max_ahead <= 2 + 3 + 1, g.max_ahead  # threads + most (+ the one being computed)


def test_a_failing_group_is_computed_again_one_item_at_a_time_so_a_bad_item_fails_alone():
    names = ["a0", "a1", "a2", "a3", "a4"]
    g = _Grouped(most=3, fail_group={"a1"}, fail_compute={"a1"})
    outcomes = g.run(names)
    assert [o.item for o in outcomes] == names
    assert {o.item: str(o.error) for o in outcomes if not o.ok} == {"a1": "a1 is bad"}
    assert g.groups == [["a0", "a1", "a2"], ["a3", "a4"]]
    assert g.alone == ["a0", "a1", "a2"]  # the failed group, again through compute
    assert [o.value for o in outcomes if o.ok] == ["saved Aa0", "saved Aa2", "saved Ba3", "saved Ba4"]


def test_without_keys_the_runner_keeps_its_look_ahead_and_computes_one_at_a_time():
    names = [f"x{i}" for i in range(12)]
    g = _Grouped()
    outcomes = g.run(names, threads=2)
    assert [o.value for o in outcomes] == [f"saved Ax{i}" for i in range(12)]
    assert g.alone == names and g.groups == []
    assert g.max_ahead <= 2 + 2, g.max_ahead  # as without a grouping: threads + 1 ahead
    serial = _Grouped()
    assert [o.value for o in serial.run(["a0", "a1"], threads=0)] == ["saved Aa0", "saved Aa1"]
    assert serial.groups == []  # a serial run computes one item at a time


# ----------------------------------------------------------------------------- thread counts


@pytest.mark.parametrize("cpus, cpu_threads, gpu_threads",
                         [(1, 1, 1), (2, 2, 2), (4, 4, 4), (8, 4, 4), (12, 4, 5), (16, 4, 7), (32, 4, 15),
                          (64, 4, 16), (128, 4, 16)])
def test_io_threads_grow_with_the_cores_only_when_the_device_work_is_on_a_gpu(cpus, cpu_threads, gpu_threads):
    assert default_io_threads(on_gpu=False, cpus=cpus) == cpu_threads
    assert default_io_threads(on_gpu=True, cpus=cpus) == gpu_threads


def test_io_threads_env_and_explicit_threads_still_decide(monkeypatch):
    import cvtools.batch as b

    monkeypatch.setattr(b, "_cpu_count", lambda: 16)
    monkeypatch.delenv("CVTOOLS_IO_THREADS", raising=False)
    gpu = StagedWork(load=len, compute=len, save=len, on_gpu=True)
    assert io_threads(gpu) == 7 and io_threads(StagedWork(load=len, compute=len, save=len)) == 4
    assert io_threads(StagedWork(load=len, compute=len, save=len, threads=3, on_gpu=True)) == 3
    monkeypatch.setenv("CVTOOLS_IO_THREADS", "12")
    assert io_threads(gpu) == 12
    monkeypatch.setenv("CVTOOLS_IO_THREADS", "0")
    assert io_threads(gpu) == 0


# ----------------------------------------------------------------------------- the batched forward


@pytest.fixture(scope="module")
def fp32_mona():
    from cvtools.style.stylize import Stylizer

    return Stylizer("mona", device="cpu", precision="fp32")


def _pixels(im):
    return np.array(im, dtype=np.uint8)


def test_a_batch_gives_each_photo_what_the_one_photo_path_gives(fp32_mona):
    photos = [photo(72, 56, seed=s) for s in range(3)]
    for kw in (dict(), dict(strength=0.6, preserve_color=True)):
        alone = [fp32_mona(p, tile=None, as_uint8=True, **kw) for p in photos]
        together = fp32_mona.stylize_batch([_pixels(p) for p in photos], **kw)
        for a, b in zip(alone, together):
            assert b.dtype == torch.uint8 and b.shape == a.shape == (3, 56, 72)
            diff = (a.int() - b.int()).abs()
            assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 1e-3
            # the very layout a PIL image is made from without a copy
            assert b.permute(1, 2, 0).is_contiguous()
    # a photo decoded on the device (3×H×W, passed as its H×W×3 view) or a tensor joins a batch alike
    decoded = torch.from_numpy(_pixels(photos[0])).permute(2, 0, 1).contiguous()  # 3×H×W, as nvJPEG gives
    mixed = fp32_mona.stylize_batch([decoded.permute(1, 2, 0), torch.from_numpy(_pixels(photos[1]))])
    pair = fp32_mona.stylize_batch([_pixels(p) for p in photos[:2]])
    assert torch.equal(mixed[0], pair[0]) and torch.equal(mixed[1], pair[1])
    with pytest.raises(ValueError, match="same-size"):
        fp32_mona.stylize_batch([_pixels(photos[0]), _pixels(photo(40, 56))])


def test_a_non_finite_result_stays_float_so_saving_refuses_it(fp32_mona, monkeypatch, tmp_path):
    from cvtools.errors import ImageError
    from cvtools.io.atomic import save_image

    real = fp32_mona.stylize_tensor

    def poisoned(x):
        out = real(x).clone()
        out[1, 0, 3, 3] = float("nan")
        return out

    monkeypatch.setattr(fp32_mona, "stylize_tensor", poisoned)
    outs = fp32_mona.stylize_batch([_pixels(photo(40, 32, seed=s)) for s in range(3)])
    assert [o.dtype for o in outs] == [torch.uint8, torch.float32, torch.uint8]
    with pytest.raises(ImageError, match="NaN"):
        save_image(tmp_path / "o.png", outs[1])


def test_a_smaller_batch_is_padded_only_to_a_batch_the_compiled_network_ran(fp32_mona, monkeypatch):
    seen = []
    real = fp32_mona.stylize_tensor
    monkeypatch.setattr(fp32_mona, "stylize_tensor", lambda x: seen.append(x.shape[0]) or real(x))
    monkeypatch.setattr(fp32_mona, "_batches_seen", {}, raising=False)
    images = [_pixels(photo(32, 24, seed=s)) for s in range(3)]
    fp32_mona.stylize_batch(images)
    fp32_mona.stylize_batch(images[:2])  # eager: no padding
    monkeypatch.setattr(fp32_mona._forward, "compiled_for", lambda shape: tuple(shape) == (3, 3, 24, 32))
    short = fp32_mona.stylize_batch(images[:2])  # compiled for 3 of this size: padded to 3, two back
    assert seen == [3, 2, 3] and len(short) == 2
