"""CPU preview (session p, issue 29; the GPU was not lent): a shipped style fine-tuned with its recorded recipe and
recipe fields changed (e.g. the content term at Lite0 blocks.2).

    python3 benchmarks/plans/session_p/cpu_finetune.py STYLE TAG STEPS CROP BATCH '{"content_layer": "blocks.2"}'

Run from the repository root (2 threads); writes /tmp/sp/TAG/STYLE.{safetensors,json}; judge with
benchmarks/plans/session_p/judge.sh /tmp/sp OUT STYLE TAG ...
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
changes = json.loads(sys.argv[6])
rec = json.load(open(f"cvtools/style/bundled/styles/{style}.json"))["recipe"]
rec.update({k: v for k, v in changes.items() if k != "objective"})
obj = dict(rec["objective"])
obj.update(changes.get("objective", {}))
c = TrainConfig(style_image=f"{shared}/styles/{style}.jpg", photos=f"{shared}/data/photos/free", name=style,
                output=f"/tmp/sp/{tag}", steps=steps, batch_size=batch, image_size=size, style_size=rec["style_size"],
                width=0.5, device="cpu", workers=0, preview_every=0, checkpoint_every=0, log_every=10,
                style_weight=rec["style_weight"], content_weight=rec["content_weight"], tv_weight=rec["tv_weight"],
                temporal_weight=rec.get("temporal_weight", 0.0), lr=3e-4, style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=obj,
                init_weights=f"cvtools/style/bundled/weights/{style}.safetensors")
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
