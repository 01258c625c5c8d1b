"""#28 target d (a strength that keeps the strokes): other ways to mix the photo's own style parameters with the
painting's at strength 0.5, judged as tools/arbitrary_quality.py judges the shipped one (the independent Lite2 Gram
distance, stroke density at 0.5 over the pixel blend of the full style at the same distance).

    PYTHONPATH=.:tools python benchmarks/plans/session_m/strength_probe.py SHARED OUT.json [photos] [paintings]

Schemes (P = every conditional norm's gamma and beta; s = 0.5):
- linear: (1 - s)·own + s·painting (shipped)
- gamma_full: every gamma the painting's, every beta mixed (the strokes' contrast kept, the shifts mixed)
- late_full: the residual and upsampling stages the painting's, the stem and down stages mixed
- early_full: the stem and down stages the painting's, the residual and upsampling stages mixed
- residual_full: the residual blocks the painting's, the rest mixed
- detail_sigma3 / detail_sigma6: the linear mix's picture below a Gaussian of sigma 3 (6) px, the full style's
  detail above it (the light and colour at half strength, the strokes at full)
"""
import json
import sys
from pathlib import Path

import torch
from arbitrary_quality import EDGE_THRESHOLD, painting_file, pick_photos, stroke_density  # noqa: F401
from style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS

from cvtools.backbones import load_backbone
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.arbitrary import ArbitraryStylizer
from cvtools.style.losses import gram_distances, style_target
from cvtools.style.stylize import resize_long_side

torch.set_grad_enabled(False)
torch.set_num_threads(2)
shared, out = Path(sys.argv[1]), Path(sys.argv[2])
n_photos = int(sys.argv[3]) if len(sys.argv) > 3 else 4
names = sys.argv[4].split(",") if len(sys.argv) > 4 else ["starry_night", "great_wave", "monet_grand_canal"]
photos = pick_photos(shared)[:n_photos]
judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
arb = ArbitraryStylizer(device="cpu")
T = arb.net.transformer


def columns(modules, part):
    """Index of the gamma (part 0) or beta (part 1) columns of these norms."""
    idx = []
    for m in modules:
        for n in (x for x in m.modules() if x.__class__.__name__ == "CondNorm"):
            start = n.offset + part * n.channels
            idx += list(range(start, start + n.channels))
    return torch.tensor(idx, dtype=torch.long)


everything = [T]
early, residual, up = [T.stem, *T.down], list(T.residuals), list(T.up)
SCHEMES = {
    "linear": [],
    "gamma_full": [columns(everything, 0)],
    "late_full": [columns(residual + up, 0), columns(residual + up, 1)],
    "early_full": [columns(early, 0), columns(early, 1)],
    "residual_full": [columns(residual, 0), columns(residual, 1)],
    "detail_sigma3": ("detail", 3.0),
    "detail_sigma6": ("detail", 6.0),
}
ONLY = [k for k in sys.argv[5].split(",")] if len(sys.argv) > 5 else list(SCHEMES)
SCHEMES = {k: v for k, v in SCHEMES.items() if k in ONLY}


def gaussian(y, sigma):
    """3×H×W → the same blurred per channel (style_quality's separable Gaussian takes N×1×H×W)."""
    from style_quality import _blur

    return _blur(y[:, None], sigma)[:, 0]


def mixed(own, paint, s, full_cols):
    p = (1 - s) * own + s * paint
    for c in full_cols:
        p[:, c] = paint[:, c]
    return p


def run(x, params):
    return arb.transformer(x[None].contiguous(memory_format=arb.memory_format), params)[0].clamp(0, 1)


rows = []
for stem, path, _ in photos:
    x = pil_to_tensor(load_image(path).rgb)  # as tools/arbitrary_quality.py reads them
    own = arb.net.style_params(arb.encode(x)[None])
    for name in names:
        art = pil_to_tensor(load_image(painting_file(shared, name)).rgb)
        target = style_target(judge, pil_to_tensor(resize_long_side(load_image(painting_file(shared, name)).rgb, 512)),
                              INDEPENDENT_LAYERS)

        def distance(y):
            f = judge.features(y.float()[None], INDEPENDENT_LAYERS)
            return float(torch.stack(list(gram_distances(f, target).values())).mean())

        paint = arb.style_params(arb.encode(art))
        full, zero = run(x, paint), run(x, own)
        d0, d1, dp = distance(zero), distance(full), distance(x)
        for scheme, cols in SCHEMES.items():
            if isinstance(cols, tuple):
                lin = run(x, mixed(own, paint, 0.5, []))
                half = (gaussian(lin, cols[1]) + full - gaussian(full, cols[1])).clamp(0, 1)
            else:
                half = run(x, mixed(own, paint, 0.5, cols))
            dh = distance(half)
            row = dict(photo=stem, painting=name, scheme=scheme, d0=d0, d1=d1, d_half=dh, d_photo=dp,
                       between=min(d0, d1) <= dh <= max(d0, d1))
            if d1 <= dh <= dp:
                lo, hi = 0.0, 1.0
                for _ in range(14):
                    mid = (lo + hi) / 2
                    if distance((x + mid * (full - x)).clamp(0, 1)) > dh:
                        lo = mid
                    else:
                        hi = mid
                b = (x + (lo + hi) / 2 * (full - x)).clamp(0, 1)
                dh_, db = stroke_density(half), stroke_density(b)
                row.update(blend_t=(lo + hi) / 2, ratio={k: dh_[k] / max(db[k], 1e-9) for k in dh_})
            rows.append(row)
            print(stem, name, scheme, round(dh, 4), (round(d0, 4), round(d1, 4)), row.get("ratio"), flush=True)
            if stem == photos[0][0]:
                from cvtools.io.atomic import save_image
                save_image(out.parent / f"strength_{stem}__{name}__{scheme}.png", half)
summary = {}
for scheme in SCHEMES:
    rs = [r for r in rows if r["scheme"] == scheme]
    rr = [r for r in rs if "ratio" in r]
    summary[scheme] = dict(between=sum(r["between"] for r in rs), of=len(rs),
                           **{k: round(sum(r["ratio"][k] for r in rr) / max(len(rr), 1), 3)
                              for k in ("gradient", "edge_density", "highpass")},
                           d_half_rel=round(sum((r["d_half"] - r["d1"]) / (r["d0"] - r["d1"]) for r in rs) / len(rs), 3))
print(json.dumps(summary, indent=1))
out.write_text(json.dumps(dict(summary=summary, rows=rows), indent=1))
