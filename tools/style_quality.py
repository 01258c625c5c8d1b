#!/usr/bin/env python3
"""Measure how well each style matches its painting, on held-out photos.

    python tools/style_quality.py                       # every bundled style, print a table
    python tools/style_quality.py --write               # also store the numbers in the records
    python tools/style_quality.py --styles runs/x.json --shared ../shared

For each photo (20 BSDS500 photos from shared/data/photos/research, never used in training:
every 25th of the sorted 500) and each style:

- Gram distance to the painting: in the style layers of the style's own recipe (backbone
  taps), mean over layers of ‖G(x) − G(painting)‖² / ‖G(painting)‖², the painting at the
  recipe's style size; for the stylized photo and for the unstylized photo.
- reduction = 1 − d(stylized) / d(photo): the share of the distance the style removes.
- content distance: ‖F(stylized) − F(photo)‖² / ‖F(photo)‖² in the recipe's content layer.

Photos are stylized at their own size (481×321 or 321×481) on the CPU in fp32.
For scale, ``--baseline`` prints the content distance between two *different* photos (each photo
against the next one of the same orientation): what "no content kept at all" measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD_OUT_EVERY = 25  # every 25th of the 500 sorted research photos -> 20 photos


def held_out_photos(shared: Path):
    files = sorted((shared / "data" / "photos" / "research").glob("*.jpg"))
    if not files:
        raise SystemExit(f"no research photos under {shared}/data/photos/research")
    return files[::HELD_OUT_EVERY][:20]


def measure(record, photos, shared: Path, backbone):
    import torch

    from cvtools.imageio import load_image, pil_to_tensor
    from cvtools.style.losses import content_distance, gram_distances, style_target
    from cvtools.style.stylize import Stylizer, resize_long_side

    recipe = record.recipe
    layers = recipe.get("style_layers") or list(backbone.defaults.style)
    content = recipe.get("content_layer") or backbone.defaults.content
    painting = shared / "styles" / Path(record.provenance.get("file", record.provenance.get("style_image", ""))).name
    style_rgb = resize_long_side(load_image(painting).rgb, int(recipe.get("style_size", 512)))
    target = style_target(backbone, pil_to_tensor(style_rgb), layers)
    stylizer = Stylizer(record, device="cpu", precision="fp32")  # the reference numbers: fp32
    rows = []
    for p in photos:
        photo = pil_to_tensor(load_image(p).rgb)
        out = stylizer(photo, tile=None)
        with torch.no_grad():
            feats = backbone.features(torch.stack([photo, out]), layers + [content])
        d = gram_distances(feats, target)
        d_mean = torch.stack([v for v in d.values()]).mean(0)  # per image: [photo, stylized]
        rows.append(dict(photo=p.name, gram_photo=float(d_mean[0]), gram_stylized=float(d_mean[1]),
                         reduction=1 - float(d_mean[1] / d_mean[0]),
                         content=float(content_distance(feats[content][1:], feats[content][:1])[0])))
    return rows


def summarise(rows, photos, backbone_name, layers, content):
    red = [r["reduction"] for r in rows]
    return {
        "photos": len(rows),
        "photo_set": f"BSDS500 research photos, held out (every {HELD_OUT_EVERY}th of the sorted 500)",
        "photo_files": [p.name for p in photos],
        "backbone": backbone_name, "style_layers": layers, "content_layer": content,
        "gram_distance_photo_mean": round(statistics.mean(r["gram_photo"] for r in rows), 4),
        "gram_distance_stylized_mean": round(statistics.mean(r["gram_stylized"] for r in rows), 4),
        "gram_reduction_mean": round(statistics.mean(red), 4),
        "gram_reduction_min": round(min(red), 4),
        "content_distance_mean": round(statistics.mean(r["content"] for r in rows), 4),
        "content_distance_max": round(max(r["content"] for r in rows), 4),
        "measured": time.strftime("%Y-%m-%d"),
        "tool": "tools/style_quality.py",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", nargs="*", help="names or record paths (default: every bundled style)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--write", action="store_true", help="store the numbers in each record's 'quality'")
    ap.add_argument("--baseline", action="store_true", help="content distance between different photos")
    args = ap.parse_args(argv)

    from cvtools.backbones import load_backbone
    from cvtools.style.records import bundled_names, resolve_style

    shared = Path(args.shared)
    photos = held_out_photos(shared)
    if args.baseline:
        import torch

        from cvtools.imageio import load_image, pil_to_tensor
        from cvtools.style.losses import content_distance

        bb = load_backbone("efficientnet_lite0", device="cpu", precision="fp32")
        layer = bb.defaults.content
        imgs = [pil_to_tensor(load_image(p).rgb) for p in photos]
        dists = []
        for i, a in enumerate(imgs):
            b = next((x for x in imgs[i + 1:] + imgs[:i] if x.shape == a.shape), None)
            if b is not None:
                with torch.no_grad():
                    f = bb.features(torch.stack([a, b]), [layer])[layer]
                dists.append(float(content_distance(f[1:], f[:1])[0]))
        print(f"content distance between different photos ({len(dists)} pairs, {layer}): "
              f"mean {statistics.mean(dists):.3f}, min {min(dists):.3f}")
        if not args.styles:
            return
    names = args.styles or bundled_names()
    print("| style | Gram distance: photo → stylized | reduction (mean, min) | content distance (mean, max) |")
    print("|---|---|---|---|")
    cache = {}
    for name in names:
        record = resolve_style(name)
        bname = record.recipe.get("backbone", "efficientnet_lite0")
        if bname not in cache:
            cache[bname] = load_backbone(bname, device="cpu", precision="fp32")
        bb = cache[bname]
        rows = measure(record, photos, shared, bb)
        q = summarise(rows, photos, bname, record.recipe.get("style_layers") or list(bb.defaults.style),
                      record.recipe.get("content_layer") or bb.defaults.content)
        print(f"| {record.name} | {q['gram_distance_photo_mean']:.3f} → {q['gram_distance_stylized_mean']:.3f} | "
              f"{q['gram_reduction_mean']:.1%}, {q['gram_reduction_min']:.1%} | "
              f"{q['content_distance_mean']:.3f}, {q['content_distance_max']:.3f} |", flush=True)
        if args.write:
            record.quality = q
            record.save(record.path)


if __name__ == "__main__":
    main()
