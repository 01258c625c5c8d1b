"""Image I/O edge cases, made inside the tests."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from cvtools.errors import ImageError
from cvtools.io.atomic import save_image
from cvtools.io.decode import load_image
from cvtools.io.discover import expand_inputs
from cvtools.io.naming import output_path_for


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


def test_importing_and_loading_leave_pillow_settings_alone(tmp_path):
    """Pillow's globals belong to the program that imports cvtools: neither the import nor a
    load changes them (checked in a fresh interpreter, where nothing else has set them)."""
    import subprocess
    import sys

    p = tmp_path / "a.png"
    _rgb().save(p)
    code = ("from PIL import Image, ImageFile\n"
            "before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)\n"
            "import cvtools.io.decode as io\n"
            "after_import = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)\n"
            f"assert io.load_image({str(p)!r}).size == (40, 30)\n"
            "after_load = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)\n"
            "assert before == after_import == after_load, (before, after_import, after_load)\n"
            "assert before[0] is not None and before[1] is False\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_our_pixel_limit_decides_over_pillows(tmp_path, monkeypatch):
    """A program that set Pillow's own bomb threshold low (here 1,000 pixels: it raises above
    2,000) does not change what cvtools accepts: the 64x64 image (4,096 pixels) loads with our
    limit off, is refused with our message (naming its size and how to allow it) under a limit
    it exceeds, and the program's setting is back in place after both."""
    from PIL import ImageFile

    p = tmp_path / "big.png"
    _rgb(64, 64).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(p)  # the program's own threshold is in force
    assert load_image(p, max_pixels=None).size == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(ImageError, match=r"big.png: 64x64 is 4,096 pixels, over the 4,000 pixels safety limit"
                                         r".*CVTOOLS_MAX_PIXELS=0"):
        load_image(p, max_pixels=4000)
    assert Image.MAX_IMAGE_PIXELS == 1000
    # and a program that lets Pillow accept truncated files still gets them refused by cvtools
    t = tmp_path / "trunc.jpg"
    buf = io.BytesIO()
    _rgb(200, 200).save(buf, "JPEG")
    t.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageError, match="trunc.jpg: cannot decode"):
        load_image(t)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_output_never_overwrites_input_or_existing(tmp_path):
    """Derived names move on to the next free name; an explicit -o FILE is never renamed."""
    src = tmp_path / "a.jpg"
    _rgb().save(src)
    assert output_path_for(src, None, "mona") == tmp_path / "a_mona.jpg"
    with pytest.raises(ImageError, match="overwrite an input"):
        output_path_for(src, str(src), "mona", overwrite=True)
    (tmp_path / "a_mona.jpg").write_bytes(b"x")
    assert output_path_for(src, None, "mona") == tmp_path / "a_mona-2.jpg"  # the file is kept
    with pytest.raises(ImageError, match="exists.*pass overwrite=True") as err:
        output_path_for(src, str(tmp_path / "a_mona.jpg"), "mona")
    assert err.value.params == ("overwrite",) and "--" not in str(err.value)  # the CLI says --overwrite
    assert output_path_for(src, None, "mona", overwrite=True) == tmp_path / "a_mona.jpg"
    out = tmp_path / "outdir"
    assert output_path_for(src, str(out) + "/", "x", ext=".png") == out / "a_x.png"
    assert (tmp_path / "a_mona.jpg").read_bytes() == b"x"


def _run_policy(src, provenance, notes, **kw):
    """One run naming ``src``'s output; the run's Outputs is kept in ``_last_run`` for the save."""
    from cvtools.io.naming import Outputs

    outputs = _last_run["outputs"] = Outputs(provenance, on_note=notes.append, found=kw.pop("found", ()))
    return output_path_for(src, kw.pop("output", None), kw.pop("suffix", "dream"), outputs=outputs, **kw)


_last_run: dict = {}


def _save_in_last_run(path, image):
    return save_image(path, image, outputs=_last_run["outputs"])


def test_rerun_policy_in_the_library(tmp_path):
    """Same command, options and input: OutputSkipped('done'); other options: the next free
    name, and the note says what changed; a changed input is not 'done'."""
    from cvtools.io.markers import Provenance, read_marker
    from cvtools.io.naming import OutputSkipped

    src = tmp_path / "p.png"
    _rgb(seed=1).save(src)
    a = Provenance("dream", {"--steps": 10, "--layer": []})
    b = Provenance("dream", {"--steps": 20, "--layer": ["blocks.6"]})
    notes = []
    first = _run_policy(src, a, notes)
    assert first == tmp_path / "p_dream.png"
    _save_in_last_run(first, _rgb(seed=2))
    marker = read_marker(first)
    assert marker["command"] == "dream" and marker["options"] == {"--layer": [], "--steps": 10}
    with pytest.raises(OutputSkipped) as info:
        _run_policy(src, a, notes)
    assert info.value.kind == "done" and "p_dream.png" in str(info.value)
    second = _run_policy(src, b, notes)
    assert second == tmp_path / "p_dream-2.png" and len(notes) == 1
    assert "--steps 10" in notes[0] and "this run: --layer blocks.6, --steps 20" in notes[0], notes
    _save_in_last_run(second, _rgb(seed=3))
    with pytest.raises(OutputSkipped):  # the second run resumed: its own -2 file is found
        _run_policy(src, b, notes)
    _rgb(seed=4).save(src)  # the input changed: its old output is not this one's
    assert _run_policy(src, a, notes) == tmp_path / "p_dream-3.png"
    assert "another input" in notes[-1]
    # --overwrite redoes it in the first name
    assert _run_policy(src, a, notes, overwrite=True) == tmp_path / "p_dream.png"


def test_own_outputs_found_in_a_folder_are_not_inputs(tmp_path):
    from cvtools.io.markers import Provenance
    from cvtools.io.naming import OutputSkipped

    src = tmp_path / "i00.png"
    _rgb().save(src)
    prov = Provenance("stylize", {"--style": "mona"})
    notes = []
    out = _run_policy(src, prov, notes, suffix="mona", found=[src])
    _save_in_last_run(out, _rgb(seed=5))
    legacy = tmp_path / "i01_mona.bmp"  # no marker (a format that cannot hold one), named like ours
    _rgb().save(tmp_path / "i01.png")
    _rgb().save(legacy)
    found = [src, out, tmp_path / "i01.png", legacy]
    for p, kind in ((out, "own_output"), (legacy, "named_like")):  # its marker says so / only its name
        with pytest.raises(OutputSkipped) as info:
            _run_policy(p, prov, notes, suffix="mona", found=found, inputs=found)
        assert info.value.kind == kind
    # named explicitly (not found in a folder), it is an input like any other
    assert _run_policy(out, prov, notes, suffix="mona", found=[], inputs=[out]) == tmp_path / "i00_mona_mona.png"
    # the original's output is its own earlier result, recognised as done, not 'an input'
    with pytest.raises(OutputSkipped) as info:
        _run_policy(src, prov, notes, suffix="mona", found=found, inputs=found)
    assert info.value.kind == "done"


def test_two_inputs_one_name_in_a_batch_get_two_names(tmp_path):
    from cvtools.io.markers import Provenance

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        _rgb().save(tmp_path / sub / "x.png")
    notes = []
    from cvtools.io.naming import Outputs

    run = Outputs(Provenance("dream", {}), on_note=notes.append)
    out = str(tmp_path / "o") + "/"
    t1 = output_path_for(tmp_path / "a" / "x.png", out, "dream", many=True, overwrite=True, outputs=run)
    t2 = output_path_for(tmp_path / "b" / "x.png", out, "dream", many=True, overwrite=True, outputs=run)
    assert output_path_for(tmp_path / "a" / "x.png", out, "dream", many=True, outputs=run) == t1
    assert (t1.name, t2.name) == ("x_dream.png", "x_dream-2.png")
    assert len(notes) == 1 and "is the output for" in notes[0] and "a/x.png" in notes[0]


def test_markers_are_untrusted(tmp_path):
    """Malformed, deeply nested or foreign markers are no marker at all."""
    from PIL.PngImagePlugin import PngInfo

    from cvtools.io.markers import read_marker

    for i, text in enumerate(["not json", "[" * 50000 + "]" * 50000, '{"command": 3}', "x" * 70000,
                              '{"command":"dream","digest":"d","input":"i","options":[1]}']):
        info = PngInfo()
        info.add_text("cvtools", text)
        p = tmp_path / f"m{i}.png"
        _rgb(8, 8).save(p, pnginfo=info)
        m = read_marker(p)
        assert m is None or (i == 4 and m["options"] == {}), (i, m)
    (tmp_path / "t.png").write_text("text")
    assert read_marker(tmp_path / "t.png") is None and read_marker(tmp_path / "none.png") is None
    os.mkfifo(tmp_path / "f.png")
    assert read_marker(tmp_path / "f.png") is None  # never opened: it would block


def test_temporary_names_are_short(tmp_path):
    """A 250-byte output name is legal; the temporary file it is written through must be too."""
    name = "n" * 246 + ".png"
    save_image(tmp_path / name, _rgb(8, 8))
    assert os.listdir(tmp_path) == [name]


def test_degenerate_aspect_ratio_is_refused_before_decoding(tmp_path):
    from cvtools.io.decode import MAX_ASPECT_RATIO

    p = tmp_path / "strip.png"
    Image.new("L", (65535, 1)).save(p)
    with pytest.raises(ImageError, match=r"strip.png: 65535x1 is a degenerate shape \(aspect ratio 65535:1"):
        load_image(p, max_pixels=None)
    ok = tmp_path / "pano.png"
    Image.new("RGB", (MAX_ASPECT_RATIO * 2, 2)).save(ok)
    assert load_image(ok).size == (MAX_ASPECT_RATIO * 2, 2)  # at the limit: accepted
    Image.new("RGB", (2, MAX_ASPECT_RATIO * 2 + 1)).save(ok)
    with pytest.raises(ImageError, match="degenerate"):
        load_image(ok)


def _srgb_expected(px, colorants, gamma):
    """Adobe-like RGB -> sRGB by hand: decode the gamma, to XYZ (D50) through the profile's
    colorants (as stored: s15Fixed16), to linear sRGB through the built-in sRGB profile's
    colorants, clip (relative colorimetric), encode with the sRGB curve."""
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).profile
    to_xyz = (np.round(np.array(colorants) * 65536) / 65536).T
    srgb_to_xyz = np.array([srgb.red_colorant[0], srgb.green_colorant[0], srgb.blue_colorant[0]]).T
    lin = (px / 255.0) ** (round(gamma * 256) / 256)
    out = np.clip(lin @ to_xyz.T @ np.linalg.inv(srgb_to_xyz).T, 0, 1)
    return np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055) * 255


def test_icc_profiles_are_converted_to_srgb_and_outputs_tagged(tmp_path):
    from badinputs import ADOBE_RGB_COLORANTS, ADOBE_RGB_GAMMA, adobe_like_icc
    from PIL import ImageCms

    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    px[0, :4] = [(128, 128, 128), (200, 60, 60), (60, 160, 60), (70, 80, 190)]
    p = tmp_path / "adobe.png"
    Image.fromarray(px).save(p, icc_profile=adobe_like_icc())
    got = np.asarray(load_image(p).rgb).astype(float)
    # Tolerance: half a level from rounding the output, plus at most half a level from
    # LittleCMS's 16-bit fixed-point curves and matrix (it rounds once more internally).
    np.testing.assert_allclose(got, _srgb_expected(px, ADOBE_RGB_COLORANTS, ADOBE_RGB_GAMMA), atol=1.0)
    # The right way: grey stays grey, colours get more saturated (Adobe RGB's primaries lie
    # outside sRGB's, so the same numbers mean more saturated colours there).
    assert np.abs(got[0, 0] - 128).max() <= 2
    for i in (1, 2, 3):
        assert np.ptp(got[0, i]) > np.ptp(px[0, i].astype(float)) + 10, (px[0, i], got[0, i])
    # The same file JPEG-encoded: also converted (the profile travels in APP2)
    j = tmp_path / "adobe.jpg"
    Image.fromarray(px).save(j, quality=95, icc_profile=adobe_like_icc())
    from cvtools.io.decode import to_srgb

    with Image.open(j) as im:
        decoded = im.convert("RGB")
    np.testing.assert_array_equal(np.asarray(load_image(j).rgb), np.asarray(to_srgb(decoded, adobe_like_icc())))
    assert np.abs(np.asarray(load_image(j).rgb).astype(int) - np.asarray(decoded)).max() > 30  # it did move
    # Outputs are tagged sRGB, and an sRGB-tagged file loads unchanged
    for ext in (".png", ".jpg", ".webp", ".tif"):
        out = save_image(tmp_path / f"out{ext}", load_image(p).rgb)
        with Image.open(out) as im:
            desc = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"])).profile.profile_description
        assert "sRGB" in desc, (ext, desc)
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "out.png").rgb), got.astype(np.uint8))
    # A damaged profile is ignored (the pixels are taken as sRGB), never an error
    Image.fromarray(px).save(p, icc_profile=b"\0" * 200)
    np.testing.assert_array_equal(np.asarray(load_image(p).rgb), px)


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


def test_an_identical_run_that_wrote_the_output_first_counts_as_done(tmp_path):
    """Two identical runs racing on one -o: the loser's result is the file already there (same
    marker: command, options, input), so it is 'already done', not an error; a file that
    appeared from anything else is still refused."""
    from PIL import Image

    from cvtools.io.atomic import save_image
    from cvtools.io.markers import Provenance
    from cvtools.io.naming import Outputs, OutputSkipped, output_path_for

    src = tmp_path / "p.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(src)
    picture = Image.new("RGB", (8, 8), (200, 100, 0))
    run = Outputs(Provenance("stylize", {"--style": "mona"}), batch=[src])
    out = output_path_for(src, str(tmp_path / "out.png"), "x", outputs=run)
    save_image(out, picture, outputs=run)  # the other run, first to finish
    with pytest.raises(OutputSkipped) as err:
        save_image(out, picture, outputs=run)
    assert err.value.kind == "done"
    other = output_path_for(src, str(tmp_path / "other.png"), "x", outputs=run)
    picture.save(other)  # appeared meanwhile, without our marker (someone's file)
    with pytest.raises(ImageError, match="appeared while this one was made"):
        save_image(other, picture, outputs=run)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cvtools-")]  # no temporary left


def test_settle_writes_waits_for_saves_under_way_and_removes_what_cannot_finish(tmp_path):
    """What ``cvtools.cli._exit_now`` does before ending the process without joining threads: a
    write under way on another thread finishes; one that cannot within the timeout loses its
    temporary file, so nothing partial is left either way."""
    import threading
    import time

    from cvtools.io import atomic
    from cvtools.io.atomic import atomic_write, settle_writes

    release = threading.Event()
    errors = []

    def slow(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
            f.flush()
            time.sleep(0.3)
            f.write(b" and the rest")

    opened = threading.Event()

    def stuck(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
            f.flush()
        opened.set()
        release.wait(10)

    def run(path, fn):
        try:
            atomic_write(path, fn)
        except Exception as exc:  # the stuck write's file was taken away: it fails, as it should
            errors.append(exc)

    def under_way():  # the write has made its temporary file (however slowly the thread started)
        deadline = time.monotonic() + 10
        while not atomic._in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert atomic._in_flight

    done = threading.Thread(target=run, args=(tmp_path / "slow.bin", slow))
    done.start()
    under_way()
    assert settle_writes(timeout=10) == []
    assert (tmp_path / "slow.bin").read_bytes() == b"half and the rest"
    done.join()

    hung = threading.Thread(target=run, args=(tmp_path / "stuck.bin", stuck))
    hung.start()
    assert opened.wait(10)  # its file is open and half written: what settling must clean up
    removed = settle_writes(timeout=0.1)
    assert len(removed) == 1 and not os.path.exists(removed[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.bin"]
    release.set()
    hung.join()
    assert not (tmp_path / "stuck.bin").exists() and len(errors) == 1


def test_a_file_an_option_names_is_part_of_the_digest_by_its_content(tmp_path, monkeypatch):
    """A painting (or a guide, a model) replaced under the same name makes earlier outputs stale:
    the digest holds the content of every existing file an option names, also as a blend's
    ``path:weight`` and through another spelling of the path; options naming no file keep the
    digest they always had (sha256 of the JSON of command and options), so those outputs stay done."""
    import hashlib
    import json

    from cvtools.io.markers import Provenance

    monkeypatch.chdir(tmp_path)
    painting = tmp_path / "art.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(painting)
    first = Provenance("stylize", {"--style": ["art.png"]})
    assert Provenance("stylize", {"--style": [str(painting)]}).digest == first.digest  # ./art.png, /abs/art.png
    blend = Provenance("stylize", {"--style": ["art.png:0.3", "mona:0.7"]})
    assert blend.options["--style"][0] == f"{painting}:0.3"
    Image.new("RGB", (8, 8), (10, 10, 200)).save(painting)  # another painting, the same name
    mtime = painting.stat().st_mtime_ns + 10 ** 9  # digests are cached by (path, size, mtime): a coarse clock
    os.utime(painting, ns=(mtime, mtime))          # could give both saves one mtime
    assert Provenance("stylize", {"--style": ["art.png"]}).digest != first.digest
    assert Provenance("stylize", {"--style": ["art.png:0.3", "mona:0.7"]}).digest != blend.digest
    plain = Provenance("stylize", {"--style": ["mona"], "--size": None})
    expected = hashlib.sha256(json.dumps(["stylize", plain.options], sort_keys=True, default=str).encode())
    assert plain.digest == expected.hexdigest()[:16]


def test_a_long_suffix_is_shortened_with_a_hash_so_names_fit_the_file_system(tmp_path):
    """A blend of paintings with long file names joins them all into the output's suffix: beyond
    MAX_SUFFIX_BYTES it keeps its beginning and a hash of the whole (whole UTF-8 characters), so
    the name fits in 255 bytes and two long blends still differ."""
    from cvtools.io.naming import MAX_SUFFIX_BYTES, fitting_suffix

    long_a = "+".join(["pierre_auguste_renoir_acrobats_at_the_cirque_fernando"] * 3)
    long_b = long_a.replace("acrobats", "dancers")
    for suffix in (long_a, "é" * 100):
        short = fitting_suffix(suffix)
        assert len(short.encode()) <= MAX_SUFFIX_BYTES and suffix.startswith(short.rsplit("-", 1)[0])
    assert fitting_suffix(long_a) != fitting_suffix(long_b) and fitting_suffix("mona") == "mona"
    src = tmp_path / ("photo_" + "x" * 120 + ".png")
    Image.new("RGB", (4, 4)).save(src)
    out = output_path_for(src, str(tmp_path / "out") + "/", long_a)
    assert len(out.name.encode()) <= 255 and out.name.startswith(src.stem + "_pierre")


def test_output_directory_mirrors_the_subfolders_of_a_searched_folder(tmp_path):
    """An input found by searching a folder goes below an output directory in its own subfolder;
    no output directory (next to the input) and one inside the input folder (a dream's frame
    folder beside the photo, in/sub/b_dream/) stay as they were."""
    from cvtools.io.discover import find_inputs
    from cvtools.io.markers import Provenance
    from cvtools.io.naming import Outputs

    for rel in ("sub/b.png", "sub2/b.png", "top.png"):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        _rgb().save(tmp_path / "in" / rel)
    found = find_inputs([str(tmp_path / "in")])
    run = Outputs(Provenance("dream", {})).begin(found.found, found.paths, folders=found.folders)
    b = tmp_path / "in" / "sub" / "b.png"
    out = str(tmp_path / "out") + "/"
    assert output_path_for(b, out, "dream", many=True, outputs=run) == tmp_path / "out" / "sub" / "b_dream.png"
    assert output_path_for(tmp_path / "in" / "sub2" / "b.png", out, "dream", many=True, outputs=run) == \
        tmp_path / "out" / "sub2" / "b_dream.png"
    assert output_path_for(tmp_path / "in" / "top.png", out, "dream", many=True, outputs=run) == \
        tmp_path / "out" / "top_dream.png"
    assert output_path_for(b, None, "dream", many=True, outputs=run) == b.with_name("b_dream.png")
    frames = str(b.with_name("b_dream")) + "/"
    assert output_path_for(b, frames, "dream_0000", ".png", many=True, outputs=run) == \
        b.with_name("b_dream") / "b_dream_0000.png"
    assert not (tmp_path / "out").exists()  # named, not made: a folder appears when a file is written
