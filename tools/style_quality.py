#!/usr/bin/env python3
"""Measure each style on held-out photos with a yardstick the training did not optimise.

    python tools/style_quality.py                       # every bundled style, print a table
    python tools/style_quality.py --write               # also store the numbers in the records
    python tools/style_quality.py --styles runs/x.json old=path/to/old.json --photos 6
    python tools/style_quality.py --streaks photo.jpg --styles mona    # the streak map, as a PNG

Photos: 20 BSDS500 photos from shared/data/photos/research (every 25th of the sorted 500), never
used in training (which used only shared/data/photos/free), stylized at their own size
(481×321 or 321×481) on the CPU in fp32. Per style, means over the photos of:

- **style distance (independent)**: plain Gram distance to the painting in EfficientNet-Lite2
  (blocks 0, 3, 6, 10: the ends of its first four stages), a network the styles are *not* trained
  through (training uses Lite0, with Lite1 as an optional second network, and softmax-transformed
  Grams): mean over layers of ‖G(x) − G(painting)‖² / ‖G(painting)‖², the painting at the
  recipe's style size; ``reduction`` = 1 − d(stylized) / d(photo).
- **content kept (edges)**: correlation of the photo's and the result's gradient magnitude
  (luminance, Gaussian-smoothed with σ = 2 px so that painted texture does not count): 1 = the
  same edges, 0 = unrelated.
- **tone kept**: ``range``: the result's luminance spread (2nd to 98th percentile) over the
  photo's; ``tone r``: correlation of the two luminances at 1/8 size (light stays light,
  dark stays dark; negative = inverted); ``white``/``black``: the result's 99th / 1st luminance
  percentile on the photos where the photo's own is above 0.85 / below 0.15 (0..1 scale).
- **streaks**: pixels per 10,000 on thin (1-2 px), long (≥ 15 px) vertical or horizontal lines
  that stand out from their flanks and are not in the photo (see :func:`streak_map`);
  ``flagged``: photos with more than ``STREAK_FLAG`` of them above the painting's own density
  (the same detector on the painting: The Scream and The Great Wave are full of long thin
  strokes, which are their style, not an artifact).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD_OUT_EVERY = 25  # every 25th of the 500 sorted research photos -> 20 photos
INDEPENDENT_BACKBONE = "efficientnet_lite2"
INDEPENDENT_LAYERS = ["blocks.0", "blocks.3", "blocks.6", "blocks.10"]
#: streak pixels per 10,000, above the painting's own density, from which a photo counts as
#: streaked (the old mona weights: 1-35 on the 20 photos, 12 above 10; QUALITY.md)
STREAK_FLAG = 10.0


def held_out_photos(shared: Path, count: int = 20):
    files = sorted((shared / "data" / "photos" / "research").glob("*.jpg"))
    if not files:
        raise SystemExit(f"no research photos under {shared}/data/photos/research")
    return files[::HELD_OUT_EVERY][:count]


# ---------------------------------------------------------------- image statistics


def luma(x):
    """3×H×W (or N×3×H×W) in [0, 1] → N×1×H×W luminance."""
    if x.dim() == 3:
        x = x.unsqueeze(0)
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True)


def _second_diff_x(y):
    import torch.nn.functional as F

    return F.pad(y[..., :, :-2] - 2 * y[..., :, 1:-1] + y[..., :, 2:], (1, 1, 0, 0))


def streak_map(y, y_photo, length: int = 15, flank=(3, 9), contrast: float = 0.04, above_flank: float = 2.0):
    """Boolean map of vertical streak pixels of luminance ``y`` (N×1×H×W) absent from ``y_photo``.

    A vertical line of width 1-2 px shows as a second difference across x that keeps its sign
    along y: averaged over ``length`` rows it stays near the line's contrast, while texture and
    noise average out. A pixel is a streak pixel where that average exceeds ``contrast``, is
    ``above_flank`` times the mean detail (|∂²/∂x²| + |∂²/∂y²|) in the columns 3-9 px to either
    side (a thin line on a calm surround, not a dense brush texture), and is twice the photo's
    own response nearby (the photo's edges and lines do not count). Horizontal streaks: call
    it on the transposed images.
    """
    import torch
    import torch.nn.functional as F

    pad = (length // 2, 0)
    dxx = _second_diff_x(y)
    dyy = F.pad(y[..., :-2, :] - 2 * y[..., 1:-1, :] + y[..., 2:, :], (0, 0, 1, 1))
    v = F.avg_pool2d(dxx, (length, 1), 1, pad).abs()
    detail = F.avg_pool2d(dxx.abs() + dyy.abs(), (length, 1), 1, pad)
    a, b = flank
    w = b - a + 1  # odd, so the box keeps the width
    box = F.avg_pool2d(detail, (1, w), 1, (0, w // 2))
    off = a + w // 2
    left = F.pad(box, (off, 0, 0, 0))[..., :, :box.shape[-1]]
    right = F.pad(box, (0, off, 0, 0))[..., :, off:]
    vp = F.max_pool2d(F.avg_pool2d(_second_diff_x(y_photo), (length, 1), 1, pad).abs(), 5, 1, 2)
    return (v > contrast) & (v > above_flank * torch.maximum(left, right)) & (v > 2 * vp)


def streaks_per_10k(photo, out) -> float:
    """Vertical + horizontal streak pixels per 10,000 pixels of ``out`` (3×H×W, like ``photo``)."""
    yp, yo = luma(photo), luma(out)
    vert = streak_map(yo, yp).float().mean()
    horiz = streak_map(yo.transpose(-1, -2), yp.transpose(-1, -2)).float().mean()
    return float(vert + horiz) * 1e4


def painting_streaks(painting) -> float:
    """The detector on the painting itself (PIL, at the training size; nothing excluded)."""
    from cvtools.io.decode import pil_to_tensor

    x = pil_to_tensor(painting)
    return streaks_per_10k(x.new_zeros(x.shape), x)


def _pearson(a, b) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def _blur(y, sigma: float):
    import torch
    import torch.nn.functional as F

    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(y)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def edge_agreement(photo, out, sigma: float = 2.0) -> float:
    """Correlation of the gradient magnitudes of the smoothed luminances."""
    def grad(y):
        y = _blur(y, sigma)
        gx = y[..., :, 1:] - y[..., :, :-1]
        gy = y[..., 1:, :] - y[..., :-1, :]
        return (gx[..., :-1, :] ** 2 + gy[..., :, :-1] ** 2).sqrt()

    return _pearson(grad(luma(photo)), grad(luma(out)))


def tone_stats(photo, out) -> dict:
    import torch
    import torch.nn.functional as F

    yp, yo = luma(photo), luma(out)
    qs = torch.tensor([0.01, 0.02, 0.98, 0.99])
    p1, p2, p98, p99 = torch.quantile(yp.flatten(), qs).tolist()
    o1, o2, o98, o99 = torch.quantile(yo.flatten(), qs).tolist()
    return {"range": (o98 - o2) / max(1e-3, p98 - p2),
            "tone_r": _pearson(F.avg_pool2d(yp, 8, ceil_mode=True), F.avg_pool2d(yo, 8, ceil_mode=True)),
            "white": o99 if p99 > 0.85 else None, "black": o1 if p1 < 0.15 else None}


# ---------------------------------------------------------------- per style


def painting_for(record, shared: Path):
    from cvtools.io.decode import load_image
    from cvtools.style.stylize import resize_long_side

    name = Path(record.provenance.get("file", record.provenance.get("style_image", ""))).name
    return resize_long_side(load_image(shared / "styles" / name).rgb, int(record.recipe.get("style_size", 512)))


def measure(record, photos, shared: Path, backbone, images=None, content_backbone=None):
    """Per-photo rows for one style record; ``images``: the photos as tensors (cached);
    ``content_backbone``: also the earlier content distance (Lite0 ``blocks.4``)."""
    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.losses import content_distance, gram_distances, style_target
    from cvtools.style.stylize import Stylizer

    target = style_target(backbone, pil_to_tensor(painting_for(record, shared)), INDEPENDENT_LAYERS)
    stylizer = Stylizer(record, device="cpu", precision="fp32")  # the reference numbers: fp32
    rows = []
    for i, p in enumerate(photos):
        photo = images[i] if images is not None else pil_to_tensor(load_image(p).rgb)
        out = stylizer(photo, tile=None).float()
        with torch.no_grad():
            feats = backbone.features(torch.stack([photo, out]), INDEPENDENT_LAYERS)
        d = torch.stack(list(gram_distances(feats, target).values())).mean(0)  # [photo, stylized]
        cd = None
        if content_backbone is not None:
            layer = content_backbone.defaults.content
            with torch.no_grad():
                f = content_backbone.features(torch.stack([photo, out]), [layer])[layer]
            cd = float(content_distance(f[1:], f[:1])[0])
        rows.append(dict(photo=p.name, style_photo=float(d[0]), style=float(d[1]), content=cd,
                         reduction=1 - float(d[1] / d[0]), edges=edge_agreement(photo, out),
                         streaks=streaks_per_10k(photo, out), **tone_stats(photo, out)))
    return rows


def summarise(rows, photos, painting_density: float = 0.0):
    def mean(key):
        vals = [r[key] for r in rows if r[key] is not None]
        return round(statistics.mean(vals), 4) if vals else None

    return {
        "photos": len(rows),
        "photo_set": f"BSDS500 research photos, held out (every {HELD_OUT_EVERY}th of the sorted 500)",
        "photo_files": [p.name for p in photos],
        "independent_backbone": INDEPENDENT_BACKBONE, "independent_layers": INDEPENDENT_LAYERS,
        "style_distance_photo_mean": mean("style_photo"),
        "style_distance_mean": mean("style"),
        "style_reduction_mean": mean("reduction"),
        "style_reduction_min": round(min(r["reduction"] for r in rows), 4),
        # the names `cvtools styles -v` shows (now the independent Lite2 Grams; content: Lite0 blocks.4)
        "gram_reduction_mean": mean("reduction"),
        "content_distance_mean": mean("content"),
        "edge_agreement_mean": mean("edges"),
        "luminance_range_kept_mean": mean("range"),
        "tone_correlation_mean": mean("tone_r"),
        "tone_correlation_min": round(min(r["tone_r"] for r in rows), 4),
        "white_p99_mean": mean("white"), "black_p1_mean": mean("black"),
        "streaks_per_10k_mean": mean("streaks"),
        "streaks_per_10k_max": round(max(r["streaks"] for r in rows), 2),
        "painting_streaks_per_10k": round(painting_density, 2),
        "streaked_photos": sum(r["streaks"] > STREAK_FLAG + painting_density for r in rows),
        "measured": time.strftime("%Y-%m-%d"),
        "tool": "tools/style_quality.py",
    }


HEADER = ("| style | style distance (Lite2): photo → result | reduction | edges kept | luminance range kept | "
          "tone r (min) | white p99 / black p1 | streaks /10k: mean (max), photos flagged |")


def table_row(label, q) -> str:
    return (f"| {label} | {q['style_distance_photo_mean']:.3f} → {q['style_distance_mean']:.3f} | "
            f"{q['style_reduction_mean']:.1%} | {q['edge_agreement_mean']:.2f} | {q['luminance_range_kept_mean']:.2f} | "
            f"{q['tone_correlation_mean']:.2f} ({q['tone_correlation_min']:.2f}) | "
            f"{q['white_p99_mean']:.2f} / {q['black_p1_mean']:.2f} | "
            f"{q['streaks_per_10k_mean']:.1f} ({q['streaks_per_10k_max']:.1f}), {q['streaked_photos']} |")


def write_streak_png(photo_path, style, out_path):
    """The result with its streak pixels marked in red, beside the plain result (for looking)."""
    from PIL import Image

    from cvtools.io.decode import load_image, pil_to_tensor, tensor_to_pil
    from cvtools.style.stylize import Stylizer

    photo = pil_to_tensor(load_image(photo_path).rgb)
    out = Stylizer(style, device="cpu", precision="fp32")(photo, tile=None).float()
    yp, yo = luma(photo), luma(out)
    m = (streak_map(yo, yp) | streak_map(yo.transpose(-1, -2), yp.transpose(-1, -2)).transpose(-1, -2))[0, 0]
    marked = out.clone()
    marked[:, m] = marked.new_tensor([1.0, 0.0, 0.0]).view(3, 1)
    a, b = tensor_to_pil(out), tensor_to_pil(marked)
    sheet = Image.new("RGB", (a.width * 2 + 4, a.height))
    sheet.paste(a, (0, 0))
    sheet.paste(b, (a.width + 4, 0))
    sheet.save(out_path)
    return float(m.float().mean()) * 1e4


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", nargs="*", help="names or record paths, optionally LABEL=PATH (default: every "
                    "bundled style)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--photos", type=int, default=20, help="how many of the 20 held-out photos")
    ap.add_argument("--write", action="store_true", help="store the numbers in each record's 'quality'")
    ap.add_argument("--json", help="also write every row and summary here")
    ap.add_argument("--streaks", metavar="PHOTO", help="write PHOTO's streak map for each style as a PNG")
    ap.add_argument("--rescore", metavar="JSON", help="summaries again from a --json file's rows (no stylizing)")
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.records import bundled_names, resolve_style

    shared = Path(args.shared)
    items = []
    for s in args.styles or bundled_names():
        label, _, path = s.rpartition("=")
        items.append((label or Path(path).stem, path))
    if args.streaks:
        for label, path in items:
            out = Path(f"streaks_{label}.png")
            print(f"{label}: {write_streak_png(args.streaks, path, out):.1f} streak pixels per 10k -> {out}")
        return
    photos = held_out_photos(shared, args.photos)
    if args.rescore:
        report = json.loads(Path(args.rescore).read_text())
        print(HEADER)
        print("|---|---|---|---|---|---|---|---|")
        for label, path in items:
            record = resolve_style(path)
            rows = report[label]["rows"]
            q = summarise(rows, [p for p in photos if p.name in {r["photo"] for r in rows}],
                          painting_streaks(painting_for(record, shared)))
            report[label]["summary"] = q
            print(table_row(label, q), flush=True)
            if args.write:
                record.quality = q
                record.save(record.path)
        Path(args.rescore).write_text(json.dumps(report, indent=1))
        return
    images = [pil_to_tensor(load_image(p).rgb) for p in photos]
    bb = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    lite0 = load_backbone("efficientnet_lite0", device="cpu", precision="fp32")
    torch.set_grad_enabled(False)
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|")
    report = {}
    for label, path in items:
        record = resolve_style(path)
        rows = measure(record, photos, shared, bb, images, lite0)
        q = summarise(rows, photos, painting_streaks(painting_for(record, shared)))
        report[label] = {"summary": q, "rows": rows}
        print(table_row(label, q), flush=True)
        if args.write:
            record.quality = q
            record.save(record.path)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
