"""CPU probe (issue 29, 2026-12-06), run from the repository root: python3 THIS TAG 300 192 4 SHARE.
Writes /tmp/gw/TAG/. shipped great_wave fine-tuned with its recipe, optionally with darker-skin augmentation."""
import json
import os
import sys
import time

import torch

from cvtools.style import trainer as T
from cvtools.style.losses import skin_mask
from cvtools.style.train import TrainConfig, train_style

shared = os.environ.get("CVTOOLS_SHARED", "/work/shared")
torch.set_num_threads(2)
tag, steps, size, batch, share = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
obj_extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
style = os.environ.get("STYLE", "great_wave")
rec = json.load(open(f"cvtools/style/bundled/styles/{style}.json"))["recipe"]
obj = dict(rec["objective"]); obj.update(obj_extra)

if share > 0:
    orig = T.Trainer.step.__wrapped__ if hasattr(T.Trainer.step, "__wrapped__") else None
    real_step = T.Trainer.step
    def step(self, batch_uint8):
        g = torch.Generator().manual_seed(1234 + self.step_count)
        x = batch_uint8.float() / 255
        n = x.shape[0]
        pick = torch.rand(n, generator=g) < share
        f = torch.exp(torch.empty(n).uniform_(torch.log(torch.tensor(0.3)).item(), torch.log(torch.tensor(0.75)).item(), generator=g))
        m = torch.nn.functional.avg_pool2d(skin_mask(x), 5, 1, 2, count_include_pad=False)
        fac = 1 - m * (1 - f.view(n, 1, 1, 1)) * pick.view(n, 1, 1, 1)
        x = (x * fac).clamp(0, 1)
        return real_step(self, (x * 255).round().to(torch.uint8))
    T.Trainer.step = step

c = TrainConfig(style_image=f"{shared}/styles/{style}.jpg", photos=f"{shared}/data/photos/free", name=style,
                output=f"/tmp/gw/{tag}", steps=steps, batch_size=batch, image_size=size, style_size=rec["style_size"],
                width=0.5, device="cpu", workers=0, preview_every=0, checkpoint_every=0, log_every=10,
                style_weight=rec["style_weight"], content_weight=rec["content_weight"], tv_weight=rec["tv_weight"],
                temporal_weight=rec.get("temporal_weight", 0), lr=3e-4, style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=obj,
                init_weights=f"cvtools/style/bundled/weights/{style}.safetensors")
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
