"""CPU preview (session l, 2026-12-07; the GPU call for it was refused): the shipped mona fine-tuned with its
recorded recipe and the objective changes given (here tone_log), against the same fine-tune without them.

    python3 cpu_finetune.py TAG STEPS CROP BATCH '{"teacher_weight": 10, "tone_weight": 30}'

Run from the repository root (2 threads; ~1 s a step at 192-px crops x 4 on the shared 2-core VM);
writes /tmp/cd/TAG/mona.{safetensors,json}; judge with tools/people_quality.py --weights-dir /tmp/cd/TAG.
"""
import json
import os
import sys
import time

import torch

from cvtools.style.train import TrainConfig, train_style

shared = os.environ.get("CVTOOLS_SHARED", "../shared")
torch.set_num_threads(2)
tag, steps, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
obj_extra = json.loads(sys.argv[5])
rec = json.load(open("cvtools/style/bundled/styles/mona.json"))["recipe"]
obj = dict(rec["objective"])
obj.update(obj_extra)
c = TrainConfig(style_image=f"{shared}/styles/mona.jpg", photos=f"{shared}/data/photos/free", name="mona",
                output=f"/tmp/cd/{tag}", steps=steps, batch_size=batch, image_size=size, style_size=rec["style_size"],
                width=0.5, device="cpu", workers=0, preview_every=0, checkpoint_every=0, log_every=10,
                style_weight=rec["style_weight"], content_weight=rec["content_weight"], tv_weight=rec["tv_weight"],
                temporal_weight=rec["temporal_weight"], lr=3e-4, style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=obj,
                init_weights="cvtools/style/bundled/weights/mona.safetensors")
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
