"""``stylize``'s --style values and options and ``dream``'s --size, against a new user's first
mistakes and hostile values (issue #26): one line, before the model loads, and nothing written.
Images are made in code, a few dozen pixels. (``export``'s output: tests/test_export.py.)"""


import numpy as np
import pytest
import torch
from fresh import in_fresh_process
from PIL import Image

from cvtools.errors import CvtoolsError, ImageError, UsageError


def noise(w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert(mode)


@pytest.fixture
def pics(tmp_path):
    noise(52, 40).save(tmp_path / "photo.png")
    noise(48, 48, 1).save(tmp_path / "a.png")
    noise(48, 48, 2).save(tmp_path / "b.png")
    return tmp_path


def one_line(result, code=1):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == code and len(lines) == 1, (result.exit_code, result.stderr)
    return lines[0]


# ------------------------------------------------------------------ 1, 4: bad --style, before torch


def test_a_bad_style_is_one_line_before_torch_is_imported(pics):
    (pics / "text.jpg").write_text("not a picture")
    (pics / "art").mkdir()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(pics / "dot.png")
    noise(300, 20).save(pics / "strip.png")
    photo = str(pics / "photo.png")
    cases = [("nosuch", "unknown style 'nosuch'"), (str(pics / "missing.jpg"), "missing.jpg: no such file"),
             (str(pics / "text.jpg"), "text.jpg: not a recognised image"), (str(pics / "art"), "is a directory"),
             (str(pics / "dot.png"), "dot.png: the painting is only 1x1 pixels"),
             (str(pics / "strip.png"), "strip.png: the painting is only 300x20 pixels"),
             (str(pics / "missing.safetensors"), "no such style file")]
    results, torch_loaded = in_fresh_process([["stylize", photo, "--style", style] for style, _ in cases])
    for (style, words), (code, lines) in zip(cases, results):
        assert code == 1 and len(lines) == 1 and words in lines[0], (style, lines)
        assert lines[0].startswith("cvtools: error: ")
    assert not torch_loaded
    assert not list(pics.glob("photo_*"))


# ------------------------------------------------------------------ 2: did you mean, any case


def test_style_names_ignore_case_and_unknown_ones_suggest_the_meant_one():
    from cvtools.style.records import resolve_style, style_suggestions, unknown_style_message

    assert resolve_style("Scream").name == "scream"
    assert resolve_style("STARRY_NIGHT").name == "starry_night"
    names = ["composition_vii", "great_wave", "mona", "scream", "starry_night"]
    assert style_suggestions("starry", names) == ["starry_night"]
    assert style_suggestions("sream", names) == ["scream"]
    assert style_suggestions("great-wave", names) == ["great_wave"]
    assert set(style_suggestions("s", names)) == {"scream", "starry_night"}
    assert unknown_style_message("starry", names) == \
        "unknown style 'starry'; did you mean 'starry_night'? (cvtools styles lists them)"
    with pytest.raises(UsageError, match="did you mean 'starry_night'"):
        resolve_style("starry")
    assert "bundled styles: composition_vii" in unknown_style_message("xyzzy", names)
    # two names that differ only in case are not guessed between
    from cvtools.style.records import bundled_name

    assert bundled_name("mona", ["Mona", "mona"]) == "mona" and bundled_name("MONA", ["Mona", "mona"]) is None


def test_cli_takes_a_style_name_in_any_case_and_suggests_for_a_typo(pics, run_cli):
    r = run_cli("stylize", pics / "photo.png", "--style", "Scream", "--strength", 0, "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    assert (pics / "photo_scream.png").exists()
    line = one_line(run_cli("stylize", pics / "photo.png", "--style", "starry"))
    assert line == "cvtools: error: unknown style 'starry'; did you mean 'starry_night'? (cvtools styles lists them)"


# ------------------------------------------------------------------ 3: blend weights


def test_style_spec_weights_name_the_bad_value(pics):
    from cvtools.style.records import parse_style_spec

    a = str(pics / "a.png")
    with pytest.raises(UsageError, match=r"b\.jpg:abc: the weight 'abc' is not a number"):
        parse_style_spec("b.jpg:abc")
    with pytest.raises(UsageError, match="the weight 'x' is not a number"):
        parse_style_spec(f"{a}:x")  # an existing image file, whatever its name
    for bad, shown in [("a.jpg:0", "not 0"), ("a.jpg:-2", "not -2"), ("a.jpg:inf", "not inf"),
                       ("a.jpg:1e999", "not 1e999")]:
        with pytest.raises(UsageError, match=shown):
            parse_style_spec(bad)
    assert parse_style_spec("dir:x/a.jpg") == ("dir:x/a.jpg", 1.0)  # a colon inside a path
    colon = pics / "odd:1.jpg"
    noise(40, 40).save(colon, "JPEG")
    assert parse_style_spec(str(colon)) == (str(colon), 1.0)  # an existing file is taken whole


def test_cli_a_non_number_weight_after_a_painting_says_so(pics, run_cli):
    line = one_line(run_cli("stylize", pics / "photo.png", "-s", f"{pics / 'a.png'}:1", "-s", f"{pics / 'b.png'}:abc"))
    assert "b.png:abc: the weight 'abc' is not a number" in line
    line = one_line(run_cli("stylize", pics / "photo.png", "-s", f"{pics / 'a.png'}:0"))
    assert "a.png:0: a style's weight must be a positive number, not 0" in line


def test_huge_weights_are_normalised_without_overflow(lite0):
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.records import normalized_weights

    assert normalized_weights([1e308, 1e308]) == [0.5, 0.5]
    assert normalized_weights([3e307, 1e308]) == pytest.approx([3 / 13, 10 / 13])
    for bad in ([0.0], [1.0, -1.0], [float("nan")], [float("inf")], []):
        with pytest.raises(UsageError):
            normalized_weights(bad)
    a, b = torch.rand(3, 48, 48), torch.rand(3, 40, 56)
    ps = PaintingStylizer([(a, 1e308), (b, 1e308)], backbone=lite0, steps=1, extra_backbones={})
    assert [w for _, w in ps.paintings] == [0.5, 0.5]
    out = ps(torch.rand(3, 40, 48))
    assert float(out.mean()) > 0.05  # not the black picture an infinite sum made


def test_a_non_finite_result_raises_instead_of_becoming_a_picture(lite0, monkeypatch):
    from cvtools.style.optimize import PaintingStylizer

    ps = PaintingStylizer(torch.rand(3, 48, 48), backbone=lite0, steps=1, extra_backbones={})
    photo = torch.rand(3, 40, 48)
    monkeypatch.setattr(ps, "optimize", lambda x, seed=0, init=None: torch.full((1,) + tuple(x.shape), float("nan")))
    for as_uint8 in (False, True):
        with pytest.raises(CvtoolsError, match="NaN or infinite pixels; nothing written"):
            ps(photo, as_uint8=as_uint8)


# ------------------------------------------------------------------ 4: paintings too small, odd modes


def test_small_paintings_are_refused_before_any_photo(lite0):
    from cvtools.style.optimize import PaintingStylizer
    from cvtools.style.records import MIN_PAINTING_SIDE

    for small in (torch.rand(3, 1, 1), torch.rand(3, 31, 200), Image.new("RGB", (20, 64))):
        with pytest.raises(UsageError, match=f"at least {MIN_PAINTING_SIDE}"):
            PaintingStylizer(small, backbone=lite0, steps=1, extra_backbones={})
    PaintingStylizer(torch.rand(3, 32, 32), backbone=lite0, steps=1, extra_backbones={})


def test_paintings_of_every_mode_read_as_rgb(tmp_path):
    from cvtools.style.records import load_painting

    base = noise(40, 36)
    grey16 = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)  # mode I;16
    rgba = base.convert("RGBA")
    hidden = np.asarray(rgba).copy()
    hidden[:, :20] = (0, 0, 0, 0)  # black where it is fully transparent
    files = {"grey.png": base.convert("L"), "grey16.png": grey16, "cmyk.jpg": base.convert("CMYK"),
             "palette.gif": base.convert("P"), "transparent.png": Image.fromarray(hidden, "RGBA")}
    for name, im in files.items():
        im.save(tmp_path / name)
    frames = [noise(40, 36, k) for k in range(3)]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    for name in list(files) + ["animated.gif"]:
        rgb = load_painting(tmp_path / name)
        assert rgb.mode == "RGB" and rgb.size == (40, 36), name
    shown = np.asarray(load_painting(tmp_path / "transparent.png"))
    assert (shown[:, :20] == 255).all()  # laid on white, not the black hidden under it
    assert (shown[:, 20:] == np.asarray(base)[:, 20:]).all()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="bad.png"):
        load_painting(tmp_path / "bad.png")


def test_cli_stylizes_with_a_16_bit_greyscale_painting(pics, run_cli):
    grey16 = Image.fromarray(np.asarray(noise(48, 48).convert("L"), dtype=np.uint16) * 257)  # mode I;16
    grey16.save(pics / "grey16.png")
    r = run_cli("stylize", pics / "photo.png", "-s", pics / "grey16.png", "--steps", 1, "-q")
    assert r.exit_code == 0, r.stderr
    assert Image.open(pics / "photo_grey16.png").size == (52, 40)


# ------------------------------------------------------------------ 5: nan and inf options


@pytest.mark.parametrize("args", [
    ["stylize", "PHOTO", "--strength", "nan"],
    ["stylize", "PHOTO", "-s", "PAINTING", "--style-scale", "nan"],
    ["dream", "PHOTO", "--octave-scale", "nan"],
    ["dream", "PHOTO", "--step-size", "inf"],
    ["dream", "PHOTO", "--step-size", "nan"],
    ["dream", "PHOTO", "--zoom", "nan"],
    ["dream", "PHOTO", "--fps", "nan"],
])
def test_non_finite_numbers_are_refused_when_parsing(pics, run_cli, args):
    args = [str(pics / "photo.png") if a == "PHOTO" else str(pics / "a.png") if a == "PAINTING" else a for a in args]
    r = run_cli(*args)
    assert r.exit_code == 2 and "is not a finite number" in r.stderr, r.stderr
    assert not [p for p in pics.iterdir() if "_" in p.name]


# ------------------------------------------------------------------ 6: --size shrinks only


def test_resize_long_side_enlarges_only_when_asked():
    from cvtools.ops import resize_long_side

    im = Image.new("RGB", (300, 200))
    assert resize_long_side(im, 600, enlarge=False) is im
    assert resize_long_side(im, 150, enlarge=False).size == (150, 100)
    assert resize_long_side(im, 600).size == (600, 400)  # the default (paintings in training) as before


def test_cli_size_shrinks_and_enlarges_only_with_enlarge(pics, run_cli):
    photo = pics / "photo.png"  # 52x40
    common = ("--style", "mona", "--device", "cpu", "-q")
    for extra, size in [((), (52, 40)), (("--enlarge",), (104, 80))]:
        out = pics / f"big{len(extra)}.png"
        r = run_cli("stylize", photo, "--size", 104, *extra, *common, "-o", out)
        assert r.exit_code == 0, r.stderr
        assert Image.open(out).size == size
    r = run_cli("stylize", photo, "--size", 26, *common, "-o", pics / "small.png")
    assert r.exit_code == 0 and Image.open(pics / "small.png").size == (26, 20)
    assert "--enlarge goes with --size" in one_line(run_cli("stylize", photo, "--enlarge", *common))


@pytest.mark.slow
def test_cli_dream_size_shrinks_and_enlarges_only_with_enlarge(tmp_path, run_cli):
    noise(64, 48).save(tmp_path / "p.png")
    common = ("--octaves", 1, "--steps", 0, "--device", "cpu", "-q")
    for extra, size in [((), (64, 48)), (("--enlarge",), (96, 72))]:
        out = tmp_path / f"d{len(extra)}.png"
        r = run_cli("dream", tmp_path / "p.png", "--size", 96, *extra, *common, "-o", out)
        assert r.exit_code == 0, r.stderr
        assert Image.open(out).size == size


# ------------------------------------------------------------------ 7: a painting is never an output


def test_stylize_never_overwrites_its_painting(pics, run_cli):
    painting = pics / "a.png"
    before = painting.read_bytes()
    r = run_cli("stylize", pics / "photo.png", "-s", painting, "-o", painting, "--overwrite", "--steps", 1, "-q")
    assert r.exit_code == 1 and "overwrite an input" in r.stderr, r.stderr
    assert painting.read_bytes() == before


@pytest.mark.slow
def test_styles_sheet_draws_the_photo_in_every_bundled_style(tmp_path, run_cli):
    """cvtools styles --sheet: the photo and one labelled tile per bundled style, written like
    any output (a re-run is a note, never an error; -o needs --sheet; a bad photo is one line)."""
    from cvtools.io.markers import read_marker
    from cvtools.style.records import bundled_records

    photo = tmp_path / "p.png"
    noise(60, 40).save(photo)
    r = run_cli("styles", "--sheet", photo)
    assert r.exit_code == 0, r.stderr
    sheet = tmp_path / "p_styles.jpg"
    tiles = 1 + len(bundled_records())
    columns = min(4, tiles)
    rows = -(-tiles // columns)
    width, height = Image.open(sheet).size
    assert width > columns * 60 and height > rows * 40  # every tile, each with its label bar
    assert read_marker(sheet)["command"] == "styles"
    again = run_cli("styles", "--sheet", photo)
    assert again.exit_code == 0 and "already done" in again.stderr
    assert run_cli("styles", "-o", tmp_path / "x.jpg").exit_code == 2
    bad = run_cli("styles", "--sheet", tmp_path / "missing.png")
    assert bad.exit_code == 1 and "missing.png: no such file" in bad.stderr


@pytest.mark.slow
def test_a_small_photos_sheet_is_enlarged_so_the_labels_fit_and_json_describes_it(tmp_path, run_cli):
    """QA: a 17x16 photo made an 88x92 sheet with its labels cut to "p.."; its tiles are now at
    least 128 px (with a note), every style's name fits under its tile, and --json (silently
    ignored with --sheet) describes the sheet written."""
    import json

    from cvtools.style.records import bundled_records
    from cvtools.visualize.render import fit_text, font

    photo = tmp_path / "tiny.png"
    noise(17, 16).save(photo)
    r = run_cli("styles", "--sheet", photo, "-o", tmp_path / "sheet.jpg", "--json")
    assert r.exit_code == 0, r.output
    described = json.loads(r.stdout)
    names = [rec.name for rec in bundled_records()]
    assert described["sheet"] == str(tmp_path / "sheet.jpg") and described["styles"] == names and described["written"]
    tw, th = described["tile"]
    assert min(tw, th) >= 128 and "enlarged to" in r.stderr and "tiny.png" in r.stderr, r.stderr
    with Image.open(tmp_path / "sheet.jpg") as im:
        assert im.size == (described["width"], described["height"])
        assert im.width >= 4 * tw and im.height >= 2 * th
    size = max(10, min(16, round(tw / 9)))  # the labels' font and margins, as visualize.render.grid draws them
    for name in ["photo"] + names:
        assert fit_text(name, tw - 2 * max(4, size // 2), font(size)) == name
    again = run_cli("styles", "--sheet", photo, "-o", tmp_path / "sheet.jpg", "--json")  # there already: said so
    assert again.exit_code == 0 and json.loads(again.stdout)["written"] is False, again.output


def test_a_long_thin_photo_is_cut_to_its_middle_for_the_sheet():
    """QA: a 100x2000 strip made 19x384 tiles (every name cut): the sheet shows its middle, at most
    size / MIN_TILE times as long as wide, so tiles keep a MIN_TILE shorter side."""
    from cvtools.style.sheet import MIN_TILE, crop_box, tile_size

    assert crop_box(100, 2000) == (0, 850, 100, 1150) and crop_box(2000, 100) == (850, 0, 1150, 100)
    for w, h in [(100, 2000), (2000, 100), (10, 4000), (1, 1000), (300, 901)]:
        tw, th = tile_size(w, h)
        assert min(tw, th) >= MIN_TILE and max(tw, th) <= 384, (w, h, tw, th)
    for w, h in [(300, 900), (4000, 3000), (17, 16), (60, 40)]:  # these fit whole, as before
        assert crop_box(w, h) is None


@pytest.mark.slow
def test_a_long_thin_photos_sheet_says_what_it_shows(tmp_path, run_cli):
    import json

    photo = tmp_path / "strip.png"
    noise(30, 600).save(photo)
    r = run_cli("styles", "--sheet", photo, "-o", tmp_path / "sheet.jpg", "--json")
    assert r.exit_code == 0, r.output
    tw, th = json.loads(r.stdout)["tile"]
    assert (tw, th) == (128, 384), (tw, th)
    assert "strip.png: 30x600 px is long and thin: its middle 30x90 is shown" in r.stderr, r.stderr
