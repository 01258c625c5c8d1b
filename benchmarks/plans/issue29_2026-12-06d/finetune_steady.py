"""issue 29, 2026-12-06d: a bundled style fine-tuned with a stronger stability term, optionally with
the ripple (TrainConfig.temporal_deform), from its shipped weights, with its recorded recipe otherwise.
    python finetune_steady.py TAG STEPS TEMPORAL_WEIGHT DEFORM_PX [LOCAL_SHARE]
env STYLE (default starry_night), DEVICE (cuda), OUTDIR (/tmp/fs), LR (3e-4), BATCH (32), SIZE (256);
FROM_SCRATCH=1: random weights at the recipe's lr (LR ignored), the recipe's step count if STEPS is 0.
Writes OUTDIR/TAG/STYLE.{json,safetensors}; judge with tools/video_flicker.py --styles-dir-like runs
(benchmarks/plans/issue29_2026-12-06d/README.md)."""
import json
import os
import sys
import time

from cvtools.style.train import TrainConfig, train_style

shared = os.environ.get("CVTOOLS_SHARED", "/work/shared")
style = os.environ.get("STYLE", "starry_night")
device = os.environ.get("DEVICE", "cuda")
tag, steps, temporal, deform = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
local = float(sys.argv[5]) if len(sys.argv) > 5 else None
rec = json.load(open(f"cvtools/style/bundled/styles/{style}.json"))["recipe"]
scratch = os.environ.get("FROM_SCRATCH") == "1"
steps = steps or rec["steps"]
c = TrainConfig(style_image=f"{shared}/styles/{style}.jpg", photos=f"{shared}/data/photos/free", name=style,
                output=f"{os.environ.get('OUTDIR', '/tmp/fs')}/{tag}", steps=steps,
                batch_size=int(os.environ.get("BATCH", 32)), image_size=int(os.environ.get("SIZE", 256)),
                style_size=rec["style_size"], width=0.5, device=device, workers=0 if device == "cpu" else 4,
                preview_every=0, checkpoint_every=0, log_every=10, style_weight=rec["style_weight"],
                content_weight=rec["content_weight"], tv_weight=rec["tv_weight"], temporal_weight=temporal,
                temporal_local=rec.get("temporal_local", 0.0) if local is None else local, temporal_deform=deform,
                lr=rec["lr"] if scratch else float(os.environ.get("LR", 3e-4)), style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=dict(rec.get("objective") or {}) or None,
                init_weights=None if scratch else f"cvtools/style/bundled/weights/{style}.safetensors")
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
