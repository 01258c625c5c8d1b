#!/usr/bin/env python3
"""How the styles treat people and animals (issue #29): measured on a fixed held-out set.

    python tools/people_quality.py [--styles mona,scream] [--weights-dir DIR ...] [--json out.json] [--sheet out.jpg]

The set: 8 portraits (dark and light skin, children, old men, women) and 4 light-furred or
low-contrast animals from BSDS500 (``shared/data/photos/research``: evaluation only, never
training, never in a committed image), each with hand-drawn boxes around the faces or the animal
(fractions of the width and height; drawn once over a 10 % grid, see PEOPLE below).

Per style and photo, on the picture the style gives at the photo's own size:

- **subject kept**: (mean luminance in the boxes − mean luminance outside) of the output over
  the same of the photo. 1: the subject is as much lighter (or darker) than its surroundings as
  in the photo; near 0: it merges into them (great_wave's pale faces); negative: inverted (a
  light animal turned into a dark silhouette).
- **subject shift**: the same difference, output minus photo, in luminance units (0: kept;
  -0.2: the subject went 0.2 darker against its surroundings). It catches a subject as light as
  its surroundings (the lioness on dry grass), where the ratio above is undefined.
- **subject lightness shift**: the subject's mean luminance, output minus photo (a light animal
  turned into a dark shape with everything around it: about -0.3 and less).
- **subject tone r**: Spearman rank correlation of 8×8-block mean luminance inside the boxes,
  photo vs output: the subject's own light and shade (a silhouette: a light head turned dark).
- **subject chroma kept**: mean chroma (distance from grey in BT.601 YCbCr) inside the boxes,
  output over photo: 1 the faces and animals keep their colour's strength, towards 0 they turn
  grey (mona's "ashen grey-beige" faces), above 1 the painting saturates them.
- **face contrast kept**: standard deviation of the luminance inside the boxes after a 2-px
  blur (eyes, mouth, the shading of a face; the stroke texture is blurred away), output over
  photo.
- **tone rank r**: Spearman rank correlation of 16×16-block mean luminance, photo vs output
  (is what was lighter still lighter?).
- **lattice**: in flat parts of the photo (16×16 blocks whose luminance varies by < 0.02),
  48×48 tiles (half overlapping, Hann window) of the output's luminance spectrum: each frequency's
  power over the median of its 7×7 neighbourhood of frequencies (the 3×3 centre left out), the
  largest such ratio in log10, mean over tiles. A regular cross-hatch or dot pattern is a spike
  against its neighbours (a 1 % lattice added to the photos scores 3.4-3.6); painted strokes are
  a smooth hill of power (white noise 1.2, the photos themselves 1.2); frequencies where the
  photo has its own spike (JPEG's 8-px grid) are left out. The first version (peak over the
  whole spectrum's median, minus the photo's) read JPEG's grid in the photo and the strokes'
  broad low-frequency power as lattice and called mona's lattice negative.
- **style distance**: QUALITY.md's independent yardstick (plain Gram distance to the painting in
  EfficientNet-Lite2, tools/style_quality.py).

``--weights-dir`` judges other weights of the bundled styles (NAME.json records there) beside
the bundled ones, e.g. a retrained set from benchmarks/train_bundled_styles.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: photo id (data/photos/research/bsds500_ID.jpg) -> (what it shows, boxes as (x0, y0, x1, y1) fractions)
PEOPLE = {
    "train_260081": ("old man, dark skin, turban", [(0.25, 0.28, 0.75, 0.72)]),
    "test_368037": ("three children, light and dark skin", [(0.05, 0.2, 0.3, 0.7), (0.38, 0.15, 0.6, 0.6),
                                                            (0.68, 0.2, 0.9, 0.7)]),
    "train_189003": ("two women in headdresses", [(0.1, 0.25, 0.3, 0.75), (0.58, 0.25, 0.8, 0.75)]),
    "train_239096": ("woman, light skin, fair hair, flowers", [(0.3, 0.1, 0.65, 0.75)]),
    "train_302003": ("woman, hands at her face, dark background", [(0.2, 0.15, 0.8, 0.65)]),
    "test_388006": ("young woman, patterned light", [(0.15, 0.15, 0.7, 0.65)]),
    "test_246009": ("old man, knitted cap", [(0.25, 0.38, 0.75, 0.72)]),
    "test_15062": ("man in a fur hat, wall", [(0.52, 0.35, 0.72, 0.75)]),
    "test_105027": ("lioness on dry grass (light on light)", [(0.25, 0.25, 0.62, 0.85)]),
    "test_100099": ("bear by water", [(0.35, 0.3, 0.65, 0.9)]),
    "train_247085": ("collie", [(0.05, 0.1, 0.35, 0.55)]),
    "train_236017": ("deer on dry ground", [(0.1, 0.15, 0.65, 0.9)]),
}
STYLES = ["mona", "starry_night", "great_wave", "scream", "composition_vii", "grande_jatte"]
FLAT_STD = 0.02
TILE = 48


def luminance(x):
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def chroma(x):
    """Distance from grey in BT.601 YCbCr (0 for any grey; ~0.1 for skin): what an "ashen" face lost."""
    cb = -0.168736 * x[0] - 0.331264 * x[1] + 0.5 * x[2]
    cr = 0.5 * x[0] - 0.418688 * x[1] - 0.081312 * x[2]
    return (cb * cb + cr * cr).sqrt()


def box_mask(h, w, boxes):
    import torch

    m = torch.zeros(h, w, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        m[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)] = True
    return m


def _blur(y, sigma):
    from tools.style_quality import _blur as blur

    return blur(y[None, None], sigma)[0, 0]


def _spearman(a, b) -> float:
    ra = a.flatten().argsort().argsort().float()
    rb = b.flatten().argsort().argsort().float()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))


def _neighbourhood_ratio(tile, window):
    """|FFT|² of a tile (mean removed, windowed) over the median of each frequency's 7×7
    neighbourhood without its 3×3 centre (circular): ~1 on smooth spectra, large on a spike."""
    import torch
    import torch.nn.functional as F

    n = tile.shape[0]
    power = torch.fft.fft2((tile - tile.mean()) * window).abs() ** 2
    padded = F.pad(power[None, None], (3, 3, 3, 3), mode="circular")[0, 0]
    around = padded.unfold(0, 7, 1).unfold(1, 7, 1)[:n, :n].reshape(n, n, 49)
    ring = [i for i in range(49) if not (2 <= i // 7 <= 4 and 2 <= i % 7 <= 4)]
    return power / around[..., ring].median(-1).values.clamp_min(1e-20)


def lattice_score(y_out, y_photo) -> float:
    """Mean over flat tiles of the photo of log10 of the output's strongest spectral spike
    against its neighbourhood (see the module's docstring): ~1.2 for noise, 3.5 for a 1 %
    lattice; NaN when the photo has no flat tile."""
    import torch
    import torch.nn.functional as F

    h, w = y_out.shape
    std = F.avg_pool2d((y_photo ** 2)[None, None], 16) - F.avg_pool2d(y_photo[None, None], 16) ** 2
    flat16 = std.clamp_min(0).sqrt()[0, 0] < FLAT_STD
    fy, fx = torch.meshgrid(torch.fft.fftfreq(TILE), torch.fft.fftfreq(TILE), indexing="ij")
    # the lowest frequencies are the tile's own shading, not a pattern
    ring = (fy ** 2 + fx ** 2).sqrt() > 2.5 / TILE
    hann = torch.hann_window(TILE, periodic=False)
    window = hann[:, None] * hann[None, :]
    scores = []
    for ty in range(0, h - TILE + 1, TILE // 2):
        for tx in range(0, w - TILE + 1, TILE // 2):
            if not bool(flat16[ty // 16:(ty + TILE) // 16, tx // 16:(tx + TILE) // 16].all()):
                continue
            out = _neighbourhood_ratio(y_out[ty:ty + TILE, tx:tx + TILE], window)
            own = _neighbourhood_ratio(y_photo[ty:ty + TILE, tx:tx + TILE], window)
            keep = ring & (own < 20)  # the photo's own spikes (JPEG's 8-px grid) are not the style's
            scores.append(math.log10(max(float(out[keep].max()), 1e-20)))
    return sum(scores) / len(scores) if scores else float("nan")


def _subject_tone_r(y_p, y_o, boxes, block: int = 8) -> float:
    """Spearman r of block-mean luminance inside the boxes: the subject's own light and shade
    (a light head turned dark against a light body is low here, whatever the box's mean does)."""
    import torch.nn.functional as F

    h, w = y_p.shape
    inside = F.avg_pool2d(box_mask(h, w, boxes).float()[None, None], block, ceil_mode=True)[0, 0] > 0.99
    a = F.avg_pool2d(y_p[None, None], block, ceil_mode=True)[0, 0][inside]
    b = F.avg_pool2d(y_o[None, None], block, ceil_mode=True)[0, 0][inside]
    return _spearman(a, b) if a.numel() > 8 else float("nan")


def measure(photo, out, boxes) -> dict:
    y_p, y_o = luminance(photo), luminance(out)
    h, w = y_p.shape
    inside = box_mask(h, w, boxes)
    outside = ~inside

    def contrast(y):
        return float(y[inside].mean() - y[outside].mean())

    import torch.nn.functional as F

    dp = contrast(y_p)
    return {
        "subject_kept": contrast(y_o) / dp if abs(dp) > 0.02 else None,
        "subject_shift": contrast(y_o) - dp,
        "subject_lightness_shift": float(y_o[inside].mean() - y_p[inside].mean()),
        "subject_photo": dp,
        # the faces' and animals' colour, output over photo: 1 kept, towards 0 greyed (mona's ashen faces)
        "subject_chroma_kept": float(chroma(out)[inside].mean() / chroma(photo)[inside].mean().clamp_min(1e-6)),
        "face_contrast_kept": float(_blur(y_o, 2.0)[inside].std() / _blur(y_p, 2.0)[inside].std().clamp_min(1e-6)),
        "subject_tone_r": _subject_tone_r(y_p, y_o, boxes),
        "tone_rank_r": _spearman(F.avg_pool2d(y_p[None, None], 16, ceil_mode=True),
                                 F.avg_pool2d(y_o[None, None], 16, ceil_mode=True)),
        "lattice": lattice_score(y_o, y_p),
        "lattice_photo": lattice_score(y_p, y_p),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("--weights-dir", action="append", default=[],
                    help="a folder of NAME.json records to judge beside the bundled styles (repeatable: one "
                         "column of the sheet and one row of the table each, labelled with the folder's name)")
    ap.add_argument("--any-painting", action="store_true",
                    help="also judge the any-painting network on each style's painting (shared/styles/NAME.jpg, "
                         "what `-s painting.jpg` runs), labelled any-painting")
    ap.add_argument("--any-painting-names", action="store_true",
                    help="also judge the any-painting network on each bundled name's stored style (what blends "
                         "and `--strength-mode style` paint with), labelled any-painting-names")
    ap.add_argument("--json", help="write every row here")
    ap.add_argument("--sheet", help="a contact sheet of the portraits (photo, then each style): research photos, "
                                    "for looking only: never commit it")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.records import read_record, resolve_style
    from cvtools.style.stylize import Stylizer
    from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS, painting_for

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    shared = Path(args.shared)
    research = shared / "data" / "photos" / "research"
    photos = {pid: pil_to_tensor(load_image(research / f"bsds500_{pid}.jpg").rgb) for pid in PEOPLE}
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    sets = [("bundled", {n: resolve_style(n) for n in args.styles.split(",")})]
    for d in map(Path, args.weights_dir):
        sets.append((d.name, {n: read_record(d / f"{n}.json") for n in args.styles.split(",")
                              if (d / f"{n}.json").exists()}))
    if args.any_painting:
        sets.append(("any-painting", {n: shared / "styles" / f"{n}.jpg" for n in args.styles.split(",")}))
    if args.any_painting_names:
        sets.append(("any-painting-names", {n: ("name", n) for n in args.styles.split(",")}))
    rows, sheet_rows = [], {pid: [photos[pid]] for pid in PEOPLE}
    for label, records in sets:
        for name, record in records.items():
            target = style_target(judge, pil_to_tensor(painting_for(resolve_style(name), shared)), INDEPENDENT_LAYERS)
            if isinstance(record, (Path, tuple)):  # a painting (encoded) or a bundled name's stored style
                from cvtools.style.painting import NetworkPaintingStylizer

                source = record[1] if isinstance(record, tuple) else str(record)
                net = NetworkPaintingStylizer([(source, 1.0)], device="cpu", precision="fp32")
            else:
                net = Stylizer(record, device="cpu", precision="fp32")
            for pid, (what, boxes) in PEOPLE.items():
                out = net(photos[pid], tile=None).clamp(0, 1)
                out = (out * 255).round() / 255  # judged as saved
                feats = judge.features(out[None], INDEPENDENT_LAYERS)
                row = dict(weights=label, style=name, photo=pid, what=what,
                           style_distance=float(torch.stack(list(gram_distances(feats, target).values())).mean()),
                           **measure(photos[pid], out, boxes))
                rows.append(row)
                sheet_rows[pid].append(out)
            print(f"{label} {name} done", flush=True)
    print(table(rows))
    own = _mean([r['lattice_photo'] for r in rows])
    print(f"lattice of the photos themselves (same flat tiles): {own:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    if args.sheet:
        write_sheet(sheet_rows, args.sheet)


def _chroma_cell(rows) -> str:
    values = [r["subject_chroma_kept"] for r in rows if r.get("subject_chroma_kept") is not None]
    return f"{_mean(values):.2f} ({min(values):.2f})" if values else "—"  # rows written before the column


def _mean(values):
    values = [v for v in values if v is not None and v == v]
    return sum(values) / len(values) if values else float("nan")


def table(rows) -> str:
    lines = ["| weights | style | subject kept: mean (min) | subject shift: mean (most negative) | "
             "subject lightness shift: mean (min) | subject tone r: mean (min) | subject chroma kept: mean (min) | face contrast kept | "
             "tone rank r | lattice | style distance (Lite2) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["weights"], r["style"]) for r in rows))
    for wl, st in keys:
        sel = [r for r in rows if r["weights"] == wl and r["style"] == st]
        kept = [r["subject_kept"] for r in sel if r["subject_kept"] is not None]
        shift = [r["subject_shift"] for r in sel]
        str_ = [r["subject_tone_r"] for r in sel]
        light = [r["subject_lightness_shift"] for r in sel]
        lines.append(f"| {wl} | {st} | {_mean(kept):.2f} ({min(kept):.2f}) | {_mean(shift):+.3f} ({min(shift):+.3f}) | "
                     f"{_mean(light):+.2f} ({min(light):+.2f}) | {_mean(str_):.2f} ({min(str_):.2f}) | "
                     f"{_chroma_cell(sel)} | "
                     f"{_mean([r['face_contrast_kept'] for r in sel]):.2f} | "
                     f"{_mean([r['tone_rank_r'] for r in sel]):.3f} | {_mean([r['lattice'] for r in sel]):.2f} | "
                     f"{_mean([r['style_distance'] for r in sel]):.3f} |")
    return "\n".join(lines)


def write_sheet(sheet_rows, path, cell=256):
    from PIL import Image

    from cvtools.io.decode import to_uint8

    pics = list(sheet_rows.values())
    cols = max(len(r) for r in pics)
    sheet = Image.new("RGB", (cols * cell, len(pics) * cell), "white")
    for i, row in enumerate(pics):
        for j, t in enumerate(row):
            im = Image.fromarray(to_uint8(t).permute(1, 2, 0).numpy())
            im.thumbnail((cell, cell))
            sheet.paste(im, (j * cell, i * cell))
    sheet.save(path, quality=85)


if __name__ == "__main__":
    main()
