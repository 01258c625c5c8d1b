"""Does the off-grid weave (~0.39 cycles/px) lower the training loss? (issue 29, session j probe)

For a shipped network: stylize 8 free photos (256-px centre crops), find the weave's spectral peak
in each output (power over the photo's, 0.3-0.48 cycles/px), remove it with a notch (a disc of
radius R cycles/px around the peak and its mirror), and as a control remove a disc of the same
size at the same radius turned 90 deg. Report the change in each loss term (main Lite0 Grams
per layer, Lite1 Grams, stats). A positive change for the weave's notch (the loss rises when the
weave is removed) while the control barely moves means the loss pays for the weave.

    python3 weave_incentive_probe.py mona [--blur]     # --blur: the loss networks see a 1-2-1
                                                       # low-passed picture (anti-aliased stems)
"""
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from cvtools.backbones import load_backbone
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.losses import LossWeights, build_perceptual_loss, gram_distances, stats_distances
from cvtools.style.records import resolve_style
from cvtools.style.stylize import Stylizer

torch.set_num_threads(2)
style = sys.argv[1]
blur = "--blur" in sys.argv
shared = Path("/work/shared")
rec = resolve_style(style)
recipe = json.load(open(f"cvtools/style/bundled/styles/{style}.json"))["recipe"]
from PIL import Image

bb = load_backbone("efficientnet_lite0", device="cpu", precision="fp32", fuse=True)
loss = build_perceptual_loss(bb, Image.open(shared / "styles" / f"{style}.jpg").convert("RGB"), recipe["style_size"],
                             recipe["style_layers"], recipe["content_layer"], LossWeights(), recipe.get("objective"))
net = Stylizer(rec, device="cpu", precision="fp32")
photos = sorted((shared / "data/photos/free").glob("*.jpg"))[:: 8][:8]


def crop(p):
    x = pil_to_tensor(load_image(p).rgb)
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return F.interpolate(x[None], size=(256, 256), mode="area")[0]


def lowpass(y):
    k = torch.tensor([1.0, 2.0, 1.0]) / 4
    k = (k[:, None] * k[None, :]).expand(3, 1, 3, 3)
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), k, groups=3)


def terms(y):
    if blur:
        y = lowpass(y)
    out = {}
    for i, term in enumerate(loss.terms):
        f = term.backbone.features(y, term.layers)
        d = gram_distances(f, term.targets[0])
        for k in term.layers:
            out[f"{'lite0' if i == 0 else 'lite1'}:{k}"] = float(d[k].mean())
        if i == 0:
            s = stats_distances(f, term.targets[0])
            out["stats"] = float(sum(term.layer_weights[k] * s[k].mean() for k in term.layers))
    return out


def notch(y, fy, fx, r):
    n = y.shape[-1]
    f = torch.fft.fftfreq(n)
    FY, FX = torch.meshgrid(f, f, indexing="ij")
    m = torch.ones(n, n)
    for sy, sx in ((fy, fx), (-fy, -fx)):
        m[(FY - sy) ** 2 + (FX - sx) ** 2 < r * r] = 0
    return torch.fft.ifft2(torch.fft.fft2(y) * m).real


R = 0.03
rows = []
with torch.no_grad():
    for p in photos:
        x = crop(p)
        y = net(x, tile=None).clamp(0, 1)[None]
        n = 256
        f = torch.fft.fftfreq(n)
        FY, FX = torch.meshgrid(f, f, indexing="ij")
        rad = (FY ** 2 + FX ** 2).sqrt()
        py = torch.fft.fft2(y[0].mean(0)).abs() ** 2
        px = torch.fft.fft2(x.mean(0)).abs() ** 2
        ratio = (py + 1e-6) / (px + 1e-6)
        ratio[(rad < 0.3) | (rad > 0.48)] = 0
        i = int(ratio.argmax())
        fy, fx = float(f[i // n]), float(f[i % n])
        base = terms(y)
        weave = terms(notch(y, fy, fx, R).clamp(0, 1))
        ctrl = terms(notch(y, -fx, fy, R).clamp(0, 1))
        removed_w = float(((y - notch(y, fy, fx, R)) ** 2).mean())
        removed_c = float(((y - notch(y, -fx, fy, R)) ** 2).mean())
        rows.append(dict(photo=p.name, peak=(round(fy, 3), round(fx, 3)), removed_weave=removed_w, removed_ctrl=removed_c,
                         base=base, weave=weave, ctrl=ctrl))
        print(p.name, rows[-1]["peak"], f"removed energy weave {removed_w:.2e} ctrl {removed_c:.2e}", flush=True)
keys = list(rows[0]["base"])
print(f"{style} blur={blur}: relative change of each term when removing (mean over {len(rows)} photos)")
for k in keys:
    b = sum(r["base"][k] for r in rows)
    w = sum(r["weave"][k] for r in rows)
    c = sum(r["ctrl"][k] for r in rows)
    print(f"  {k:18s} base {b / len(rows):.4g}  weave-notch {100 * (w - b) / b:+.2f}%  control-notch {100 * (c - b) / b:+.2f}%")
Path(f"benchmarks/plans/session_j/weave_probe_{style}{'_blur' if blur else ''}.json").write_text(json.dumps(rows, indent=1))
