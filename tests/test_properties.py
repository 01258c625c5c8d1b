"""Property-based tests (hypothesis): image I/O for any size and mode, output naming, and the
tiling/blending code of stylize and dream."""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from cvtools.errors import ImageError
from cvtools.io.atomic import save_image
from cvtools.io.decode import load_image, pil_to_tensor, tensor_to_pil
from cvtools.io.naming import Outputs, output_path_for

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

sizes = st.tuples(st.integers(1, 48), st.integers(1, 48))


@st.composite
def images(draw):
    """(PIL image, expected RGB array, expected alpha array or None, lossless file format)."""
    w, h = draw(sizes)
    mode = draw(st.sampled_from(["RGB", "RGBA", "L", "LA", "1", "P", "PT", "I;16", "CMYK"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    u8 = lambda *shape: rng.integers(0, 256, shape, dtype=np.uint8)  # noqa: E731
    alpha = None
    if mode == "RGB":
        rgb = u8(h, w, 3)
        im = Image.fromarray(rgb)
    elif mode == "RGBA":
        arr = u8(h, w, 4)
        if draw(st.booleans()):
            arr[..., 3] = 255  # fully opaque: no alpha expected
        im = Image.fromarray(arr)
        rgb, alpha = arr[..., :3], (None if (arr[..., 3] == 255).all() else arr[..., 3])
    elif mode == "L":
        g = u8(h, w)
        im = Image.fromarray(g)
        rgb = np.repeat(g[..., None], 3, 2)
    elif mode == "LA":
        g, a = u8(h, w), u8(h, w)
        im = Image.merge("LA", [Image.fromarray(g), Image.fromarray(a)])
        rgb, alpha = np.repeat(g[..., None], 3, 2), (None if (a == 255).all() else a)
    elif mode == "1":
        bits = rng.integers(0, 2, (h, w)).astype(bool)
        im = Image.fromarray(bits.astype(np.uint8) * 255).convert("1")
        rgb = np.repeat((bits.astype(np.uint8) * 255)[..., None], 3, 2)
    elif mode in ("P", "PT"):
        palette = u8(16, 3)
        idx = rng.integers(0, 16, (h, w)).astype(np.uint8)
        im = Image.fromarray(idx, "P")
        im.putpalette(palette.flatten().tolist())
        rgb = palette[idx]
        if mode == "PT":
            im.info["transparency"] = 0
            a = np.where(idx == 0, 0, 255).astype(np.uint8)
            alpha = None if (a == 255).all() else a
    elif mode == "I;16":
        deep = rng.integers(0, 65536, (h, w)).astype(np.uint16)
        im = Image.fromarray(deep)
        g = np.clip(np.round(deep / 257.0), 0, 255).astype(np.uint8)
        rgb = np.repeat(g[..., None], 3, 2)
    else:  # CMYK, stored losslessly in TIFF; Pillow's own conversion is the reference
        im = Image.fromarray(u8(h, w, 4), "CMYK")
        rgb = np.asarray(im.convert("RGB"))
    fmts = {"RGB": ["PNG", "TIFF", "BMP", "WEBP"], "RGBA": ["PNG", "TIFF", "WEBP"], "L": ["PNG", "TIFF", "BMP"],
            "LA": ["PNG"], "1": ["PNG", "BMP", "TIFF"], "P": ["PNG", "BMP", "GIF"], "PT": ["PNG", "GIF"],
            "I;16": ["PNG", "TIFF"], "CMYK": ["TIFF"]}[mode]
    fmt = draw(st.sampled_from(fmts))
    return im, rgb, alpha, fmt


EXT = {"PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp", "GIF": ".gif"}


@SETTINGS
@given(images())
def test_any_mode_and_size_loads_exactly(tmp_path_factory, sample):
    im, rgb, alpha, fmt = sample
    d = tmp_path_factory.mktemp("rt")
    p = d / f"x{EXT[fmt]}"
    kwargs = {"lossless": True, "quality": 100, "exact": True} if fmt == "WEBP" else {}
    if fmt == "PNG" and "transparency" in im.info:
        kwargs["transparency"] = im.info["transparency"]
    if fmt == "GIF" and "transparency" in im.info:
        kwargs["transparency"] = im.info["transparency"]
    im.save(p, fmt, **kwargs)
    got = load_image(p)
    assert got.rgb.mode == "RGB" and got.size == im.size
    tol = 1 if im.mode.startswith("I") else 0
    assert np.abs(np.asarray(got.rgb).astype(int) - rgb.astype(int)).max() <= tol
    if alpha is None:
        assert got.alpha is None
    else:
        assert got.alpha is not None and np.array_equal(np.asarray(got.alpha), alpha)
    t = got.tensor()
    assert tuple(t.shape) == (3, im.size[1], im.size[0]) and 0.0 <= float(t.min()) and float(t.max()) <= 1.0


@SETTINGS
@given(sizes, st.sampled_from([".png", ".tif", ".webp"]), st.booleans(), st.integers(0, 2**32 - 1))
def test_save_image_round_trips_tensors(tmp_path_factory, size, ext, with_alpha, seed):
    import torch

    w, h = size
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(3, h, w, generator=g)
    alpha = torch.rand(1, h, w, generator=g) if with_alpha else None
    d = tmp_path_factory.mktemp("save")
    p = d / f"out{ext}"
    if ext == ".webp":
        # lossy WebP: only the size and mode are exact, and libwebp leaves the alpha plane out of a
        # picture whose alpha is all 255 after rounding (nothing is lost: it reads back opaque)
        save_image(p, rgb, alpha=alpha)
        opaque = not with_alpha or bool((alpha.mul(255).round() == 255).all())
        with Image.open(p) as im:
            assert im.size == (w, h) and im.mode in (("RGB", "RGBA") if opaque and with_alpha
                                                     else ("RGBA",) if with_alpha else ("RGB",))
    else:
        save_image(p, rgb, alpha=alpha)
        got = load_image(p)
        expect = rgb.mul(255).round().byte().permute(1, 2, 0).numpy()
        assert np.array_equal(np.asarray(got.rgb), expect)
        if with_alpha:
            a = alpha[0].mul(255).round().byte().numpy()
            if (a == 255).all():
                assert got.alpha is None
            else:
                assert np.array_equal(np.asarray(got.alpha), a)
    assert sorted(os.listdir(d)) == [p.name]  # no temporary files left behind


@SETTINGS
@given(st.lists(st.integers(0, 255), min_size=3, max_size=3 * 30 * 30).filter(lambda v: len(v) % 3 == 0))
def test_pil_tensor_inverse(values):
    n = len(values) // 3
    arr = np.array(values, dtype=np.uint8).reshape(1, n, 3)
    im = Image.fromarray(arr)
    assert np.array_equal(np.asarray(tensor_to_pil(pil_to_tensor(im))), arr)


def test_nan_results_are_never_written(tmp_path):
    import torch

    t = torch.rand(3, 8, 8)
    t[1, 2, 3] = float("nan")
    with pytest.raises(ImageError, match="NaN or infinite"):
        save_image(tmp_path / "x.png", t)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- naming

stems = st.text(alphabet=string.ascii_letters + string.digits + " ._-éü漢", min_size=1, max_size=20).filter(
    lambda s: s.strip(".") and s not in (".", "..") and not s.startswith("."))
exts = st.sampled_from([".jpg", ".JPG", ".png", ".gif", ".pgm", ".webp", ".tiff", ""])
suffixes = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)


@SETTINGS
@given(stem=stems, ext=exts, suffix=suffixes, out_ext=st.sampled_from([None, ".png", ".jpg"]),
       use_dir=st.booleans())
def test_output_naming(tmp_path_factory, stem, ext, suffix, out_ext, use_dir):
    d = tmp_path_factory.mktemp("name")
    src = d / f"{stem}{ext}"
    src.write_bytes(b"x")
    out = (str(d / "out") + "/") if use_dir else None
    target = output_path_for(src, out, suffix, ext=out_ext, inputs=[src])
    assert target != src and os.path.abspath(target) != os.path.abspath(src)
    assert target.name.startswith(Path(src).stem) and f"_{suffix}" in target.name
    # the extension is one cvtools writes well: the input's (JPEG, PNG, WebP, TIFF) or PNG
    written = target.suffix.lower()
    if out_ext:
        assert written == out_ext
    else:
        assert written in (".jpg", ".png", ".webp", ".tiff")
        if ext.lower() in (".gif", ".pgm", ""):
            assert written == ".png"
    assert target.parent == (d / "out" if use_dir else d)
    # an existing output is kept: the next free name, unless --overwrite
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"old")
    assert output_path_for(src, out, suffix, ext=out_ext, inputs=[src]) == \
        target.with_name(f"{target.stem}-2{target.suffix}")
    assert output_path_for(src, out, suffix, ext=out_ext, overwrite=True, inputs=[src]) == target


@SETTINGS
@given(stem=stems, n=st.integers(2, 4))
def test_batch_outputs_never_collide(tmp_path_factory, stem, n):
    d = tmp_path_factory.mktemp("collide")
    srcs = []
    for i in range(n):
        (d / f"dir{i}").mkdir()
        p = d / f"dir{i}" / f"{stem}.png"
        p.write_bytes(b"x")
        srcs.append(p)
    run = Outputs()
    first = output_path_for(srcs[0], str(d / "out"), "s", many=True, overwrite=True, inputs=srcs, outputs=run)
    assert output_path_for(srcs[0], str(d / "out"), "s", many=True, overwrite=True, inputs=srcs, outputs=run) == first
    taken = {first}
    for other in srcs[1:]:  # the next free name, never another input's output
        target = output_path_for(other, str(d / "out"), "s", many=True, overwrite=True, inputs=srcs, outputs=run)
        assert target not in taken
        taken.add(target)
    # without the run's Outputs nothing is claimed
    assert output_path_for(srcs[1], str(d / "out"), "s", many=True, overwrite=True, inputs=srcs) == first


def test_output_never_an_input_through_links(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    for name in ("link.png", "hard.png"):
        with pytest.raises(ImageError, match="overwrite an input"):
            output_path_for(src, str(tmp_path / name), "s", overwrite=True, inputs=[src])


def test_no_clobber_race(tmp_path):
    """A file that appears between naming and writing is not replaced without --overwrite."""
    import torch

    src = tmp_path / "a.png"
    src.write_bytes(b"x")
    run = Outputs()
    target = output_path_for(src, None, "s", outputs=run)
    target.write_bytes(b"someone else's")
    with pytest.raises(ImageError, match="appeared while"):
        save_image(target, torch.rand(3, 4, 4), outputs=run)
    assert target.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_s.png"]


def test_new_outputs_get_normal_permissions(tmp_path):
    import torch

    old = os.umask(0o022)
    try:
        p = save_image(tmp_path / "x.png", torch.rand(3, 4, 4))
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644  # mkstemp's 0600 would hide results from other users


# ----------------------------------------------------------------------------- tiling


@SETTINGS
@given(length=st.integers(1, 700), tile=st.integers(24, 300), overlap_frac=st.floats(0.0, 0.6))
def test_style_tiles_cover_and_weights_sum_to_one(length, tile, overlap_frac):
    import torch

    from cvtools.style import tiling

    overlap = min(int(tile * overlap_frac), tile - 5)
    spans = tiling.tile_spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == length  # the whole axis
    for (s, n), nxt in zip(spans, spans[1:] + [None]):
        assert s % 4 == 0 and 1 <= n <= tile + 3  # aligned to the network's stride
        if nxt is not None:
            assert nxt[0] <= s + n - overlap  # neighbours overlap by at least `overlap`
    total = torch.zeros(length, dtype=torch.float64)
    for s, n, w in tiling.axis_windows(length, tile, overlap):
        assert w.shape == (n,) and float(w.min()) >= 0.0
        total[s:s + n] += w.double()
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 2000), tile=st.integers(256, 1024), overlap=st.integers(0, 128))
@example(length=257, tile=256, overlap=0)
def test_style_tile_starts_are_distinct(length, tile, overlap):
    from cvtools.style import tiling
    starts = tiling.tile_starts(length, tile, overlap)
    assert len(set(starts)) == len(starts), starts


@SETTINGS
@given(h=st.integers(1, 120), w=st.integers(1, 120), tile=st.integers(16, 64), overlap=st.integers(0, 11),
       seed=st.integers(0, 1000))
def test_style_run_tiled_of_identity_is_identity(h, w, tile, overlap, seed):
    """Blending tiles of an image that each tile reproduces exactly gives the image back: the
    blend has no seams of its own, whatever the sizes."""
    import torch

    from cvtools.style import tiling

    x = torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))
    out = torch.zeros(3, h, w)
    # clone(): run_tiled weights the returned piece in place (fine for fresh network outputs)
    tiling.run_tiled(lambda y0, x0, th, tw: x[:, y0:y0 + th, x0:x0 + tw].clone(), h, w, tile, overlap, out)
    assert torch.allclose(out, x, atol=1e-5)
    assert tiling.tile_count(h, w, tile, overlap) == len(tiling.tile_starts(h, tile, overlap)) * len(
        tiling.tile_starts(w, tile, overlap))


@SETTINGS
@given(n=st.integers(1, 900), tile=st.integers(16, 300), offset=st.integers(0, 10_000), margin=st.integers(0, 80),
       align=st.sampled_from([1, 8, 16, 32]))
def test_dream_tile_spans_partition_the_axis(n, tile, offset, margin, align):
    import inspect

    from cvtools.dream import tiling

    if "align" in inspect.signature(tiling.tile_spans).parameters:
        spans = tiling.tile_spans(n, tile, offset, margin, align=align)
    else:  # before stride alignment existed
        spans, align = tiling.tile_spans(n, tile, offset, margin), 1
    assert spans[0][0] == 0 and spans[-1][1] == n
    for (a, b, ca, cb), nxt in zip(spans, spans[1:] + [None]):
        assert a < b and 0 <= ca <= a and b <= cb <= n
        if len(spans) > 1:
            assert ca <= max(0, a - margin) and cb >= min(n, b + margin)  # at least the margin of context
            assert ca % align == 0  # on the stride grid
            assert ca > a - margin - align and (cb == n or cb - ca < b + margin - ca + align)  # no more than needed
        if nxt is not None:
            assert nxt[0] == b  # cores are contiguous: every pixel exactly once


@SETTINGS
@given(h=st.integers(1, 90), w=st.integers(1, 90), tile=st.integers(8, 40), oy=st.integers(0, 99),
       ox=st.integers(0, 99), margin=st.integers(0, 20), align=st.sampled_from([1, 4, 8]))
def test_dream_tiled_gradient_of_a_pointwise_function_is_exact(h, w, tile, oy, ox, margin, align):
    """For a gradient that depends only on each pixel, tiling must reproduce it exactly."""
    import torch

    from cvtools.dream import tiling

    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * 1000 + w))
    grad = lambda crop: torch.sin(3 * crop) * crop  # noqa: E731
    import inspect

    kw = {"align": align} if "align" in inspect.signature(tiling.tiled_gradient).parameters else {}
    got = tiling.tiled_gradient(x, grad, tile, offset=(oy, ox), margin=margin, **kw)
    assert torch.equal(got, grad(x))


# ----------------------------------------------------------------------------- channel specs


@SETTINGS
@given(a=st.integers(0, 300), length=st.integers(1, 300), count=st.integers(1, 700))
def test_channel_ranges_and_slices_mean_the_same(a, length, count):
    """``a-b`` includes b, ``a:b+1`` is the slice that stops before b+1: the same channels, and
    both fail alike (naming the channels that do not exist) when the layer is too small."""
    from cvtools.errors import UsageError
    from cvtools.specs import parse_channel_spec

    b = a + length - 1
    inclusive, sliced = parse_channel_spec(f"{a}-{b}"), parse_channel_spec(f"{a}:{b + 1}")
    if b < count:
        assert inclusive.resolve(count) == sliced.resolve(count) == list(range(a, b + 1))
    else:
        for spec in (inclusive, sliced):
            with pytest.raises(UsageError, match=f"has {count} channels \\(0-{count - 1}\\)"):
                spec.resolve(count)


@SETTINGS
@given(channels=st.lists(st.integers(0, 200), min_size=1, max_size=40))
def test_compact_channel_lists_parse_back(channels):
    from cvtools.specs import compact_channels, parse_channel_spec

    assert parse_channel_spec(compact_channels(channels)).indices() == list(dict.fromkeys(channels))
