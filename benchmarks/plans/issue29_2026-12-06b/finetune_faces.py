"""CPU probe (issue 29, 2026-12-06; QUALITY.md "People and motion, three more probes"), run from the
repository root; writes /tmp/fb/TAG/; judge with tools/people_quality.py --weights-dir /tmp/fb/TAG.
 a bundled style fine-tuned with a tone+colour term on hand-boxed faces (and darker-face
augmentation). python3 finetune_faces.py TAG STEPS CROP BATCH FACE_W DARK_SHARE
(FACE_MODE=contrast: the face against a ring around it instead of the face's own tone and colour)
(DEVICE=cuda FROM_SCRATCH=1 OUTDIR=$OUT/e: a from-scratch run on a GPU, e.g. 500 256 32)"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from cvtools.style import losses as L
from cvtools.style import train_data as TD
from cvtools.style import trainer as T
from cvtools.style.train import TrainConfig, train_style

shared = os.environ.get("CVTOOLS_SHARED", "/work/shared")
DEVICE = os.environ.get("DEVICE", "cpu")
SCRATCH = os.environ.get("FROM_SCRATCH") == "1"  # a GPU run: from random weights at the recipe's lr
OUTDIR = os.environ.get("OUTDIR", "/tmp/fb")
if DEVICE == "cpu":
    torch.set_num_threads(2)
tag, steps, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
FACE_W, DARK = float(sys.argv[5]), float(sys.argv[6])
style = os.environ.get("STYLE", "great_wave")
BOXES = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "free_photo_faces.json")))
rec = json.load(open(f"cvtools/style/bundled/styles/{style}.json"))["recipe"]
STATE = {"faces": None}

def getitem(self, k):
    n = len(self.files); epoch, pos = divmod(int(k), n)
    if self._perm[0] != epoch:
        self._perm = (epoch, TD.epoch_permutation(self.seed, epoch, n))
    perm = self._perm[1]
    rng = np.random.default_rng([self.seed, int(k)])
    i = int(perm[pos % n]); im = self._photo(i)
    w, h = im.size
    area = w * h * rng.uniform(*self.scale)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw = int(round(min(w, math.sqrt(area * aspect)))); ch = int(round(min(h, math.sqrt(area / aspect))))
    x0 = int(rng.integers(0, w - cw + 1)); y0 = int(rng.integers(0, h - ch + 1))
    m = Image.new("L", (w, h), 0); d = ImageDraw.Draw(m)
    for bx0, by0, bx1, by1 in BOXES.get(os.path.basename(str(self.files[i])), []):
        d.rectangle([bx0 * w, by0 * h, bx1 * w, by1 * h], fill=255)
    box = (x0, y0, x0 + cw, y0 + ch)
    crop = im.resize((self.size, self.size), Image.BILINEAR, box=box, reducing_gap=2.0)
    mc = m.resize((self.size, self.size), Image.BILINEAR, box=box, reducing_gap=2.0)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT); mc = mc.transpose(Image.FLIP_LEFT_RIGHT)
    arr = np.concatenate([np.asarray(crop, dtype=np.uint8), np.asarray(mc, dtype=np.uint8)[..., None]], 2)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)
TD.PhotoCrops.__getitem__ = getitem

real_step = T.Trainer.step
def step(self, b):
    x = b[:, :3].float() / 255; face = b[:, 3:].float() / 255
    if os.environ.get("DBG"): print("batch", b.shape, b.dtype, x.mean().item(), face.mean().item())
    face = face * F.avg_pool2d(L.skin_mask(x), 5, 1, 2, count_include_pad=False)
    if DARK > 0:
        g = torch.Generator().manual_seed(4321 + self.step_count); n = x.shape[0]
        pick = (torch.rand(n, generator=g) < DARK).float().view(n, 1, 1, 1)
        f = torch.exp(torch.empty(n).uniform_(math.log(0.3), math.log(0.75), generator=g)).view(n, 1, 1, 1)
        x = (x * (1 - face * (1 - f) * pick)).clamp(0, 1)
    STATE["faces"] = face
    return real_step(self, (x * 255).round().to(torch.uint8))
T.Trainer.step = step

real_tone = L.tone_distance
def tone(images, photos, scale=8, mask=None):
    t = real_tone(images, photos, scale, mask)
    fc = STATE["faces"]
    if FACE_W and fc is not None and fc.shape[0] == images.shape[0]:
        s = 8
        w = F.avg_pool2d(fc.to(images.device), s, ceil_mode=True)
        dl = (F.avg_pool2d(L.luminance(images.float()), s, ceil_mode=True) - F.avg_pool2d(L.luminance(photos.float()), s, ceil_mode=True)).pow(2)
        dc = (F.avg_pool2d(L.chrominance(images.float()), s, ceil_mode=True) - F.avg_pool2d(L.chrominance(photos.float()), s, ceil_mode=True)).pow(2).sum(1, keepdim=True)
        ws = w.sum(dim=(1, 2, 3))
        per = ((dl + dc) * w).sum(dim=(1, 2, 3)) / ws.clamp_min(1e-6)
        if os.environ.get("FACE_MODE") == "contrast":
            # the face AGAINST its surroundings (2026-12-06c): the luminance difference between the face
            # and a ring around it (the mask grown by ~1/5 of the crop), output vs photo, as
            # tools/people_quality.py's "subject kept" measures it; nothing holds the face's own tone
            fm = fc.to(images.device)
            grow = max(3, (images.shape[-1] // 5) | 1)
            ring = (F.max_pool2d((fm > 0.25).float(), grow, 1, grow // 2) - (fm > 0.25).float()).clamp(0, 1)
            lo, lp = L.luminance(images.float()), L.luminance(photos.float())
            fs, rs = fm.sum(dim=(1, 2, 3)).clamp_min(1e-6), ring.sum(dim=(1, 2, 3)).clamp_min(1e-6)
            d_out = (lo * fm).sum(dim=(1, 2, 3)) / fs - (lo * ring).sum(dim=(1, 2, 3)) / rs
            d_ph = (lp * fm).sum(dim=(1, 2, 3)) / fs - (lp * ring).sum(dim=(1, 2, 3)) / rs
            per = (d_out - d_ph).pow(2)
            ws = torch.minimum(ws, ring.sum(dim=(1, 2, 3)) / 64)
        per = torch.where(ws > 0.5, per, torch.zeros_like(per))
        t = t + (FACE_W / max(rec["objective"].get("tone_weight", 1), 1e-6)) * per
    return t
L.tone_distance = tone

c = TrainConfig(style_image=f"{shared}/styles/{style}.jpg", photos=f"{shared}/data/photos/free", name=style,
                output=f"{OUTDIR}/{tag}", steps=steps, batch_size=batch, image_size=size, style_size=rec["style_size"],
                width=0.5, device=DEVICE, workers=0 if DEVICE == "cpu" else 4, preview_every=0, checkpoint_every=0, log_every=10,
                style_weight=rec["style_weight"], content_weight=rec["content_weight"], tv_weight=rec["tv_weight"],
                temporal_weight=rec.get("temporal_weight", 0), lr=rec["lr"] if SCRATCH else 3e-4, style_layers=rec["style_layers"],
                content_layer=rec["content_layer"], objective=dict(rec["objective"]),
                init_weights=None if SCRATCH else f"cvtools/style/bundled/weights/{style}.safetensors")
t = time.time()
r = train_style(c)
print(tag, round(time.time() - t, 1), r.final_losses)
