"""CPU fine-tune of a shipped style network with its recorded recipe plus extra objective options
(issue 29, 2026-12-06h: the spectral-spike term against the off-grid lattice).

    python3 cpu_finetune.py STYLE TAG STEPS CROP BATCH '{"spike_weight": 0.02}'

Run from the repository root (2 threads; ~1 s a step at 192-px crops x 4 on the shared 2-core VM);
writes /tmp/ft/TAG/STYLE.{safetensors,json}; judge with tools/people_quality.py --weights-dir /tmp/ft/TAG.
"""
import json
import os
import sys
import time

import torch

from cvtools.style.train import TrainConfig, train_style

shared = os.environ.get("CVTOOLS_SHARED", "../shared")
torch.set_num_threads(2)
style, tag, steps, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
obj_extra = json.loads(sys.argv[6])
rec = json.load(open(f"cvtools/style/bundled/styles/{style}.json"))["recipe"]
obj = dict(rec.get("objective") or {})
obj.update(obj_extra)
c = TrainConfig(style_image=f"{shared}/styles/{style}.jpg", photos=f"{shared}/data/photos/free", name=style,
                output=f"/tmp/ft/{tag}", steps=steps, batch_size=batch, image_size=size, style_size=rec["style_size"],
                width=0.5, device="cpu", workers=0, preview_every=0, checkpoint_every=0, log_every=10,
                style_weight=rec["style_weight"], content_weight=rec["content_weight"], tv_weight=rec["tv_weight"],
                temporal_weight=rec["temporal_weight"], lr=3e-4, style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=obj,
                init_weights=os.environ.get("INIT", f"cvtools/style/bundled/weights/{style}.safetensors"))
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
