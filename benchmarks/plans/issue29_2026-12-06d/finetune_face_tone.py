"""CPU probe (issue 29, 2026-12-06d): the shipped great_wave (face-contrast 200) fine-tuned with, on top of
its own objective, a term on the face's own tone and colour (last session's FACE_MODE default in
../issue29_2026-12-06b/finetune_faces.py, which darkened the dark-skinned man's face but merged light faces
into their surroundings when trained alone; here the contrast term, on in the recipe, holds those).
    python finetune_face_tone.py TAG STEPS CROP BATCH TONE_W
Writes /tmp/ft/TAG/great_wave.{json,safetensors}; judge with tools/people_quality.py --weights-dir."""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

from cvtools.style import losses as L
from cvtools.style.train import TrainConfig, train_style

torch.set_num_threads(2)
shared = os.environ.get("CVTOOLS_SHARED", "/work/shared")
tag, steps, size, batch, tone_w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
rec = json.load(open("cvtools/style/bundled/styles/great_wave.json"))["recipe"]

real_call = L.PerceptualLoss.__call__


def call(self, stylized, photos, faces=None):
    total, parts = real_call(self, stylized, photos, faces)
    if faces is not None and tone_w:
        # the face's own 8-px block tone and colour against the photo's, weighted by the face mask
        w = F.avg_pool2d(faces.to(stylized.device).float(), 8, ceil_mode=True)
        a, b = stylized.float(), photos.float()
        dl = (F.avg_pool2d(L.luminance(a), 8, ceil_mode=True) - F.avg_pool2d(L.luminance(b), 8, ceil_mode=True)).pow(2)
        dc = (F.avg_pool2d(L.chrominance(a), 8, ceil_mode=True)
              - F.avg_pool2d(L.chrominance(b), 8, ceil_mode=True)).pow(2).sum(1, keepdim=True)
        ws = w.sum(dim=(1, 2, 3))
        per = ((dl + dc) * w).sum(dim=(1, 2, 3)) / ws.clamp_min(1e-6)
        per = torch.where(ws > 0.5, per, torch.zeros_like(per)).mean()
        total = total + tone_w * per
        parts["face_tone"] = per.detach()
    return total, parts


L.PerceptualLoss.__call__ = call
c = TrainConfig(style_image=f"{shared}/styles/great_wave.jpg", photos=f"{shared}/data/photos/free", name="great_wave",
                output=f"/tmp/ft/{tag}", steps=steps, batch_size=batch, image_size=size, style_size=rec["style_size"],
                width=0.5, device="cpu", workers=0, preview_every=0, checkpoint_every=0, log_every=10,
                style_weight=rec["style_weight"], content_weight=rec["content_weight"], tv_weight=rec["tv_weight"],
                temporal_weight=rec.get("temporal_weight", 0), lr=3e-4, style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=dict(rec["objective"]),
                init_weights="cvtools/style/bundled/weights/great_wave.safetensors")
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
