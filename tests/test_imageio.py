"""Image I/O edge cases, made inside the tests."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from cvtools.errors import ImageError
from cvtools.imageio import expand_inputs, load_image, output_path_for, save_image


def _rgb(w=40, h=30, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    _rgb().convert("CMYK").save(p)
    im = load_image(p)
    assert im.rgb.mode == "RGB" and im.size == (40, 30) and im.alpha is None


def test_16bit_png(tmp_path):
    p = tmp_path / "deep.png"
    arr = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    Image.fromarray(arr).save(p)
    assert Image.open(p).mode.startswith("I")
    im = load_image(p)
    got = np.asarray(im.rgb)[:, :, 0].astype(float)
    assert im.rgb.mode == "RGB"
    assert np.abs(got - arr / 257.0).max() <= 1.0


def test_rgba_keeps_alpha(tmp_path):
    p = tmp_path / "a.png"
    im = _rgb().convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize((40, 30)))
    im.save(p)
    got = load_image(p)
    assert got.alpha is not None and got.alpha.size == (40, 30)
    assert np.array_equal(np.asarray(got.rgb), np.asarray(im.convert("RGB")))


def test_palette_with_transparency_and_gray_alpha(tmp_path):
    p = tmp_path / "p.png"
    pal = _rgb().quantize(16)
    pal.info["transparency"] = 0
    pal.save(p, transparency=0)
    assert load_image(p).alpha is not None
    la = tmp_path / "la.png"
    Image.merge("LA", [Image.new("L", (8, 8), 100), Image.new("L", (8, 8), 50)]).save(la)
    got = load_image(la)
    assert got.rgb.getpixel((0, 0)) == (100, 100, 100) and got.alpha.getpixel((0, 0)) == 50


def test_exif_rotation_applied(tmp_path):
    p = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    _rgb(40, 30).save(p, exif=exif)
    assert load_image(p).size == (30, 40)


def test_truncated_jpeg(tmp_path):
    p = tmp_path / "trunc.jpg"
    buf = io.BytesIO()
    _rgb(200, 200).save(buf, "JPEG")
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="trunc.jpg: cannot decode"):
        load_image(p)


def test_text_file_and_empty_file(tmp_path):
    t = tmp_path / "notes.jpg"
    t.write_text("hello, not an image")
    with pytest.raises(ImageError, match="not a recognised image"):
        load_image(t)
    e = tmp_path / "empty.png"
    e.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(e)


def test_decompression_bomb_guard(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000)).save(p)
    with pytest.raises(ImageError, match="safety limit"):
        load_image(p, max_pixels=1_000_000)
    monkeypatch.setenv("CVTOOLS_MAX_PIXELS", "0")
    assert load_image(p).size == (3000, 2000)


def test_output_never_overwrites_input_or_existing(tmp_path):
    src = tmp_path / "a.jpg"
    _rgb().save(src)
    assert output_path_for(src, None, "mona") == tmp_path / "a_mona.jpg"
    with pytest.raises(ImageError, match="overwrite an input"):
        output_path_for(src, str(src), "mona", overwrite=True)
    (tmp_path / "a_mona.jpg").write_bytes(b"x")
    with pytest.raises(ImageError, match="--overwrite"):
        output_path_for(src, None, "mona")
    assert output_path_for(src, None, "mona", overwrite=True) == tmp_path / "a_mona.jpg"
    out = tmp_path / "outdir"
    assert output_path_for(src, str(out) + "/", "x", ext=".png") == out / "a_x.png"


def test_atomic_save_leaves_nothing_on_failure(tmp_path):
    import torch

    with pytest.raises(ImageError, match="unknown output format"):
        save_image(tmp_path / "x.xyz", torch.rand(3, 8, 8))
    p = save_image(tmp_path / "ok.png", torch.rand(3, 8, 8), alpha=torch.rand(1, 8, 8))
    assert Image.open(p).mode == "RGBA"
    assert sorted(os.listdir(tmp_path)) == ["ok.png"]


def test_unwritable_directory(tmp_path):
    import torch

    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        if os.access(d, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ImageError, match="not writable"):
            save_image(d / "x.png", torch.rand(3, 4, 4))
    finally:
        d.chmod(0o700)


def test_expand_inputs(tmp_path):
    (tmp_path / "sub").mkdir()
    _rgb().save(tmp_path / "sub" / "b.png")
    _rgb().save(tmp_path / "a.jpg")
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    paths, problems = expand_inputs([str(tmp_path), str(tmp_path / "*.jpg"), str(tmp_path / "empty"), "nope.jpg"])
    assert [p.name for p in paths] == ["a.jpg", "b.png"]
    assert len(problems) == 2
