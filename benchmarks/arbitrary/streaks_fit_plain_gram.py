"""Streaks per 10k pixels (tools/style_quality.py's detector) of the one-pass pictures against the
plain-Gram ``--fit`` pictures, both left on disk by tools/arbitrary_quality.py runs (2026-12-06;
numbers in PLAN.md):

    python3 benchmarks/arbitrary/streaks_fit_plain_gram.py ONE_PASS_DIR FIT_DIR   # the runs' --out/arbitrary
"""
import os
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import style_quality as sq  # noqa: E402

from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from tools.arbitrary_quality import pick_photos  # noqa: E402

torch.set_num_threads(2)
shared = Path(os.environ.get("CVTOOLS_SHARED", ROOT.parent / "shared"))
photos = {s: pil_to_tensor(load_image(p).rgb) for s, p, _ in pick_photos(shared)}
for name in ["mona", "scream", "starry_night", "great_wave", "monet_grand_canal", "shipwreck_minotaur"]:
    out = {}
    for label, d in (("one_pass", sys.argv[1]), ("fit_gram", sys.argv[2])):
        vals = [sq.streaks_per_10k(photos[s], pil_to_tensor(load_image(f"{d}/{s}__{name}.png").rgb)) for s in photos]
        out[label] = (round(statistics.mean(vals), 2), round(max(vals), 2))
    print(name, out, flush=True)
