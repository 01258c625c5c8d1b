"""Folders at the GPU's pace (issue 31), checked on the CPU: the staged runner's grouping of
consecutive same-key items (batch.Grouping), the I/O thread counts, the Stylizer's batched
forward against its one-photo path, ``stylize_work``'s batches and their fallbacks, and the
routing of JPEG files to the GPU's codec (the decision, the segments written around the GPU's
bytes, and that every fallback gives the host path's results).

Tolerance of the batched path: the network runs the same fp32 arithmetic on each image of a
batch, but a convolution library may block and sum a batch of N in another order than a batch of
1, so the floats can differ in their last bits (a few ulp: ~1e-7 of the [0, 1] range). Rounding to
8 bits turns that into nothing, except for a value within that distance of a rounding boundary
(k + 0.5)/255, which can land one level either side: so at most 1 level, on a tiny share of the
pixels (here, oneDNN on x86, they are identical).
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from badinputs import adobe_like_icc, photo
from PIL import Image

from cvtools import batch
from cvtools.batch import Grouping, StagedWork, default_io_threads, io_threads
from cvtools.io import gpu_jpeg
from cvtools.io.decode import load_image, srgb_icc
from cvtools.io.gpu_jpeg import route_jpeg, with_markers

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


def test_stylize_work_says_on_gpu_from_the_device_without_building_the_stylizer():
    from cvtools.deferred import Deferred
    from cvtools.style.job import stylize_work

    def never():
        raise AssertionError("built")

    lazy = Deferred(never)
    assert stylize_work(lazy, name="x", device="cuda").on_gpu
    assert stylize_work(lazy, name="x", device="cuda:1").on_gpu
    assert not stylize_work(lazy, name="x", device="cpu").on_gpu
    assert not stylize_work(lazy, name="x", device="mps").on_gpu
    assert not stylize_work(lazy, name="x").on_gpu  # not said: as before

    class OnCpu:
        device = torch.device("cpu")
        name = "x"

    assert not stylize_work(OnCpu(), device="cuda").on_gpu  # a built stylizer's own device decides


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


# ----------------------------------------------------------------------------- stylize_work's batches


def _folder(d: Path, sizes):
    d.mkdir()
    paths = []
    for i, (w, h) in enumerate(sizes):
        p = d / f"p{i:02d}.png"
        photo(w, h, seed=i).save(p)
        paths.append(p)
    return paths


def _stylize_folder(st, paths, out, batch_size=None, ext=".png", **kw):
    """Stylize ``paths`` into ``out`` with two I/O threads; (report, the batch sizes that went
    through ``stylize_batch``, the notes)."""
    from cvtools.io.naming import Outputs
    from cvtools.style.job import stylize_provenance, stylize_work

    calls = []
    real = st.stylize_batch
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(st, "stylize_batch", lambda images, **k: calls.append(len(images)) or real(images, **k))
        mp.setenv("CVTOOLS_IO_THREADS", "2")
        outputs = Outputs(stylize_provenance("mona"))
        work = stylize_work(st, output=str(out), many=True, inputs=paths, quiet=False, outputs=outputs,
                            batch=batch_size, ext=ext, **kw)
        notes = []
        report = batch.run([str(p) for p in paths], work, outputs=outputs,
                           on_done=lambda path, note: notes.append(note))
    return report, calls, notes


@pytest.mark.slow
def test_stylize_work_batches_same_size_photos_and_sends_the_rest_the_one_photo_way(fp32_mona, tmp_path):
    sizes = [(64, 48)] * 4 + [(48, 64)] + [(64, 48)] * 2 + [(12, 10)] + [(300, 280)] + [(64, 48)]
    paths = _folder(tmp_path / "in", sizes)
    one, one_calls, _ = _stylize_folder(fp32_mona, paths, tmp_path / "one", batch_size=1, tile=256)
    many, calls, notes = _stylize_folder(fp32_mona, paths, tmp_path / "many", batch_size=3, tile=256)
    assert one.failed == [] and many.failed == [] and len(many.done) == len(paths)
    assert one_calls == []  # batch 1: today's path
    # consecutive same-size photos, up to three; the portrait a batch of its own; the tiny and the
    # tiled one through the one-photo path
    assert calls == [3, 1, 1, 2, 1], calls
    assert any("tiles)" in (n or "") for n in notes)
    for p in paths:
        a = np.asarray(Image.open(tmp_path / "one" / f"{p.stem}_mona.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "many" / f"{p.stem}_mona.png")).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, p.name


def test_on_the_cpu_the_default_is_one_photo_at_a_time(fp32_mona, tmp_path, monkeypatch):
    monkeypatch.delenv("CVTOOLS_STYLIZE_BATCH", raising=False)
    paths = _folder(tmp_path / "in", [(40, 32)] * 4)
    report, calls, _ = _stylize_folder(fp32_mona, paths, tmp_path / "o")
    assert len(report.done) == 4 and calls == []
    monkeypatch.setenv("CVTOOLS_STYLIZE_BATCH", "4")
    report, calls, _ = _stylize_folder(fp32_mona, paths, tmp_path / "o2")
    assert len(report.done) == 4 and calls == [4]


def test_a_batch_that_fails_falls_back_to_the_one_photo_path(fp32_mona, tmp_path, monkeypatch):
    from cvtools.io.naming import Outputs
    from cvtools.style.job import stylize_provenance, stylize_work

    paths = _folder(tmp_path / "in", [(40, 32)] * 3)

    def out_of_memory(*a, **k):
        raise RuntimeError("CUDA out of memory (pretend)")

    monkeypatch.setattr(fp32_mona, "stylize_batch", out_of_memory)
    monkeypatch.setenv("CVTOOLS_IO_THREADS", "2")
    outputs = Outputs(stylize_provenance("mona"))
    work = stylize_work(fp32_mona, output=str(tmp_path / "o"), many=True, inputs=paths, quiet=True, outputs=outputs,
                        batch=3, ext=".png")
    report = batch.run([str(p) for p in paths], work, outputs=outputs)
    assert report.failed == [] and len(report.done) == 3
    assert sorted(f.name for f in (tmp_path / "o").iterdir()) == [f"{p.stem}_mona.png" for p in paths]


# ----------------------------------------------------------------------------- JPEG on the GPU: routing


def _jpeg(im=None, **kw) -> bytes:
    buf = io.BytesIO()
    (im or photo(64, 48)).save(buf, "JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def _exif(orientation) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("kw, device, why", [
    (dict(), True, "4:2:0"),
    (dict(subsampling=0), True, "4:4:4"),
    (dict(subsampling=1), True, "4:2:2"),
    (dict(exif=_exif(1)), True, "4:2:0"),
    (dict(progressive=True), False, "progressive"),
    (dict(icc_profile=srgb_icc()), False, "ICC profile"),
    (dict(exif=_exif(6)), False, "orientation 6"),
    (dict(exif=_exif(3)), False, "orientation 3"),
])
def test_only_plain_baseline_jpegs_go_to_the_gpu(kw, device, why):
    route = route_jpeg(_jpeg(**kw))
    assert route.device is device and why in route.reason
    if device:
        assert (route.width, route.height) == (64, 48)


def test_grey_cmyk_truncated_damaged_and_other_files_stay_on_the_host():
    grey = io.BytesIO()
    photo(64, 48).convert("L").save(grey, "JPEG")
    cmyk = io.BytesIO()
    photo(64, 48).convert("CMYK").save(cmyk, "JPEG")
    png = io.BytesIO()
    photo(64, 48).save(png, "PNG")
    plain = _jpeg()
    sof = plain.index(b"\xff\xc0")
    damaged = plain[:sof + 2] + b"\xff\xff" + plain[sof + 4:]  # a frame header length past the end
    for data, why in ((grey.getvalue(), "1 components"), (cmyk.getvalue(), "Adobe"), (png.getvalue(), "not a JPEG"),
                      (plain[:len(plain) // 2], "end-of-image"), (damaged, "does not parse")):
        route = route_jpeg(data)
        assert not route.device and why in route.reason, route


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision 0.29+ on its own codecs
def test_the_files_routed_to_the_gpu_are_those_a_plain_decode_gets_right(tmp_path):
    """What the routing protects: for a routed file, a decoder that knows nothing of colour
    profiles and orientation (torchvision's, like nvJPEG) gives load_image's pixels; for the
    files kept on the host it would not."""
    from torchvision.io import ImageReadMode, decode_jpeg

    base = photo(64, 48, seed=3)
    cases = {"plain.jpg": _jpeg(base), "exif1.jpg": _jpeg(base, exif=_exif(1)),
             "adobe.jpg": _jpeg(base, icc_profile=adobe_like_icc()), "turned.jpg": _jpeg(base, exif=_exif(6))}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        plain = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
        host = torch.from_numpy(np.array(load_image(tmp_path / name).rgb)).permute(2, 0, 1)
        same = plain.shape == host.shape and torch.equal(plain, host)
        assert route_jpeg(data).device is same, name


def test_gpu_jpeg_modes_and_availability(monkeypatch):
    from cvtools.errors import UsageError

    monkeypatch.delenv(gpu_jpeg.ENV, raising=False)
    assert gpu_jpeg.gpu_jpeg_modes() == (False, False)  # off unless asked for
    for text, modes in (("1", (True, True)), ("on", (True, True)), ("decode", (True, False)),
                        ("encode", (False, True)), ("0", (False, False))):
        assert gpu_jpeg.gpu_jpeg_modes(text) == modes
        monkeypatch.setenv(gpu_jpeg.ENV, text)
        assert gpu_jpeg.gpu_jpeg_modes() == modes
    with pytest.raises(UsageError, match=gpu_jpeg.ENV):
        gpu_jpeg.gpu_jpeg_modes("sometimes")
    assert not gpu_jpeg.available("cpu") and not gpu_jpeg.available(torch.device("cpu"))


# ----------------------------------------------------------------------------- JPEG on the GPU: what is written


def test_the_gpu_encoders_bytes_get_the_segments_pillow_writes_byte_for_byte(tmp_path):
    from cvtools.io.atomic import save_image, save_jpeg_bytes
    from cvtools.io.markers import read_marker
    from cvtools.io.naming import Outputs, output_path_for
    from cvtools.style.job import stylize_provenance

    src = tmp_path / "in.png"
    photo(80, 60, seed=5).save(src)
    outputs = Outputs(stylize_provenance("mona"))
    outputs.begin(found=[src], batch=[src])
    by_pillow = output_path_for(src, str(tmp_path / "a") + "/", "mona", ext=".jpg", outputs=outputs)
    by_gpu = output_path_for(src, str(tmp_path / "b") + "/", "mona", ext=".jpg", outputs=outputs)
    result = torch.from_numpy(np.array(photo(80, 60, seed=6))).permute(2, 0, 1)
    save_image(by_pillow, result, quality=95, outputs=outputs)
    bare = io.BytesIO()
    Image.fromarray(result.permute(1, 2, 0).numpy()).save(bare, "JPEG", quality=95)  # what an encoder gives
    save_jpeg_bytes(by_gpu, bare.getvalue(), outputs=outputs)
    assert by_gpu.read_bytes() == by_pillow.read_bytes()
    with Image.open(by_gpu) as im:
        assert im.info["icc_profile"] == srgb_icc()
    assert read_marker(by_gpu) is not None and read_marker(by_gpu) == read_marker(by_pillow)
    # a large profile is split into chunks as Pillow splits it
    big = bytes(range(256)) * 300
    with_big = io.BytesIO()
    Image.fromarray(result.permute(1, 2, 0).numpy()).save(with_big, "JPEG", quality=95, icc_profile=big)
    assert with_markers(bare.getvalue(), big) == with_big.getvalue()
    with pytest.raises(ValueError):
        with_markers(with_big.getvalue(), big)  # never two profiles


def test_asking_for_the_gpu_codec_on_a_cpu_changes_nothing(fp32_mona, tmp_path):
    paths = []
    (tmp_path / "in").mkdir()
    for i, kw in enumerate((dict(), dict(icc_profile=adobe_like_icc()), dict(exif=_exif(6)), dict())):
        p = tmp_path / "in" / f"p{i}.jpg"
        p.write_bytes(_jpeg(photo(48, 48, seed=i), **kw))
        paths.append(p)
    plain, _, _ = _stylize_folder(fp32_mona, paths, tmp_path / "plain", batch_size=2, ext=".jpg")
    asked, calls, _ = _stylize_folder(fp32_mona, paths, tmp_path / "asked", batch_size=2, ext=".jpg", gpu_jpeg="1")
    assert plain.failed == asked.failed == [] and calls == [2, 2]
    for p in paths:
        a, b = (tmp_path / d / f"{p.stem}_mona.jpg" for d in ("plain", "asked"))
        assert a.read_bytes() == b.read_bytes()


def test_a_routed_jpeg_that_goes_alone_is_decoded_by_the_host_as_before(tmp_path):
    """The loader's GPU route (forced on here) keeps a file's bytes for nvJPEG only when Pillow
    would give what nvJPEG gives and no resize is due; a routed file computed alone (a failed
    batch, a size that goes tiled) is decoded by the host exactly as load_image decodes it."""
    from cvtools.style.job import _Plan, _StylizeStages

    files = {"plain": _jpeg(photo(64, 48)), "adobe": _jpeg(photo(64, 48), icc_profile=adobe_like_icc()),
             "turned": _jpeg(photo(64, 48), exif=_exif(8))}
    for name, data in files.items():
        (tmp_path / f"{name}.jpg").write_bytes(data)

    def stages(size=None, max_pixels=-1):
        s = _StylizeStages(None, dict(size=size, enlarge=False, max_pixels=max_pixels), untouchable=[])
        s.plan = _Plan(None, most=4, decode=True)
        return s

    plain = stages().load(tmp_path / "plain.jpg")
    assert plain.rgb is None and plain.jpeg == files["plain"] and plain.size == (48, 64)
    host = np.array(load_image(tmp_path / "plain.jpg").rgb)
    assert np.array_equal(np.array(stages()._decoded(tmp_path / "plain.jpg")[0]), host)
    for name in ("adobe", "turned"):
        loaded = stages().load(tmp_path / f"{name}.jpg")
        assert loaded.jpeg is None and np.array_equal(np.array(loaded.rgb), np.array(load_image(tmp_path / f"{name}.jpg").rgb))
        assert np.array_equal(loaded.pixels, np.array(loaded.rgb))
    assert stages(size=32).load(tmp_path / "plain.jpg").jpeg is None  # resized on the host
    assert stages(size=64).load(tmp_path / "plain.jpg").jpeg is not None  # already that size
    from cvtools.errors import ImageError

    with pytest.raises(ImageError, match="safety limit"):  # over the limit: the host path says so
        stages(max_pixels=1000).load(tmp_path / "plain.jpg")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision 0.29+ on its own codecs
def test_an_encoders_output_written_as_save_image_writes_a_jpeg(tmp_path):
    """The writer's side of the GPU encode, with torchvision's CPU encoder standing in for nvJPEG
    (the same call): the file decodes, is tagged sRGB and carries the run's marker; non-JPEG
    names are refused."""
    from cvtools.errors import ImageError
    from cvtools.io.atomic import save_jpeg_bytes
    from cvtools.io.markers import read_marker
    from cvtools.io.naming import Outputs, output_path_for
    from cvtools.style.job import stylize_provenance

    src = tmp_path / "in.png"
    photo(64, 48, seed=2).save(src)
    outputs = Outputs(stylize_provenance("mona"))
    outputs.begin(found=[src], batch=[src])
    target = output_path_for(src, str(tmp_path / "o") + "/", "mona", ext=".jpg", outputs=outputs)
    pixels = torch.from_numpy(np.array(photo(64, 48, seed=2))).permute(2, 0, 1)
    data = gpu_jpeg.encode_on_device([pixels.permute(1, 2, 0).contiguous().permute(2, 0, 1)], 95)[0]
    save_jpeg_bytes(target, data, outputs=outputs)
    back = np.asarray(load_image(target).rgb).astype(int)
    by_pillow = io.BytesIO()
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(by_pillow, "JPEG", quality=95)
    pillow_error = np.abs(np.asarray(Image.open(by_pillow)).astype(int) - pixels.permute(1, 2, 0).numpy()).mean()
    assert back.shape == (48, 64, 3)
    assert np.abs(back - pixels.permute(1, 2, 0).numpy()).mean() <= pillow_error + 0.5  # a noisy photo: ~4 levels
    with Image.open(target) as im:
        assert im.info["icc_profile"] == srgb_icc()
    assert read_marker(target)["command"] == "stylize"
    with pytest.raises(ImageError, match="JPEG bytes"):
        save_jpeg_bytes(tmp_path / "o" / "x.png", data)
