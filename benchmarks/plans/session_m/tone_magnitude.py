"""How much of the log tone term on the shipped networks' outputs is the picture's overall darkening: the plain
term, the log term and the log term with each picture's mean block taken out (the light-ratio term), on 12 free
photos at 256 px, at each recipe's tone scale.

    python benchmarks/plans/session_m/tone_magnitude.py SHARED"""
import glob
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style.losses import tone_distance  # noqa: E402
from cvtools.style.stylize import Stylizer, resize_long_side  # noqa: E402

torch.set_grad_enabled(False)
photos = sorted(glob.glob(f"{sys.argv[1]}/data/photos/free/*"))[:12]
xs = [pil_to_tensor(resize_long_side(load_image(p).rgb, 256))[None] for p in photos]
for s in ["mona", "scream", "starry_night", "great_wave"]:
    o = json.loads((ROOT / "styles" / f"{s}.json").read_text())["recipe"]["objective"]
    scale = o.get("tone_scale", 8)
    stylizer = Stylizer(s, device="cpu", precision="fp32")
    acc = {"plain": 0.0, "log": 0.0, "ratio": 0.0}
    for x in xs:
        y = stylizer(x, tile=None).clamp(0, 1)
        acc["plain"] += float(tone_distance(y, x, scale)) / len(xs)
        acc["log"] += float(tone_distance(y, x, scale, log=True)) / len(xs)
        acc["ratio"] += float(tone_distance(y, x, scale, log=True, relative=True)) / len(xs)
    print(s, {k: round(v, 5) for k, v in acc.items()}, "log / plain", round(acc["log"] / acc["plain"], 2),
          "ratio / plain", round(acc["ratio"] / acc["plain"], 2),
          "ratio weight at the plain term's share", round(o["tone_weight"] * acc["plain"] / acc["ratio"], 2))
