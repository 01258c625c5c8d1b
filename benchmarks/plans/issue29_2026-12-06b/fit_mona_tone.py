"""Probe (issue 29, 2026-12-06; writes /tmp/mf/TAG.{pt,json,jpg}): the any-painting network fitted to mona's painting with a tone term (subjects keep their
light), judged on the people set. python fit_mona.py TAG STEPS TONE_W [MASK] [TONE_SCALE] [ALLW]"""
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../..")))
import torch

from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style import arbitrary_fit as AF
from cvtools.style.arbitrary import ArbitraryStylizer, bundled_style_embedding
from cvtools.style.losses import tone_distance
from cvtools.style.records import resolve_style
from tools import people_quality as PQ
from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS, painting_for

torch.set_num_threads(2)
tag, steps, tone_w = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
mask = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "none" else None
scale = int(sys.argv[5]) if len(sys.argv) > 5 else 8
shared = os.environ.get("CVTOOLS_SHARED", "../shared")
st = ArbitraryStylizer(device="cpu")
fitter = AF.StyleFitter(st)
orig = fitter._loss
def loss(x, y, target):
    l = orig(x, y, target)
    if tone_w:
        l = l + tone_w * tone_distance(y, x, scale, mask).mean()
    return l
fitter._loss = loss
from PIL import Image


def load(p, side=512):
    im = load_image(p).rgb; im.thumbnail((side, side), Image.BICUBIC); return pil_to_tensor(im)
photos = [load(p) for p in sorted(glob.glob(f"{shared}/data/photos/free/*.jpg"))]
painting = pil_to_tensor(load_image(f"{shared}/styles/mona.jpg").rgb)
os.environ["CVTOOLS_CACHE_DIR"] = f"/tmp/mf/cache_{tag}"
t = time.time()
params = fitter.fit(painting, photos, steps=steps, start=bundled_style_embedding("mona"))
print("fit", round(time.time() - t, 1), "s")
torch.save(params, f"/tmp/mf/{tag}.pt")
torch.set_grad_enabled(False)
from cvtools.backbones import load_backbone
from cvtools.style.losses import gram_distances, style_target

judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
research = f"{shared}/data/photos/research"
target = style_target(judge, pil_to_tensor(painting_for(resolve_style("mona"), __import__("pathlib").Path(shared))), INDEPENDENT_LAYERS)
rows, sheet = [], {}
for pid, (what, boxes) in PQ.PEOPLE.items():
    ph = pil_to_tensor(load_image(f"{research}/bsds500_{pid}.jpg").rgb)
    out = st.stylize(ph, params).clamp(0, 1)
    out = (out * 255).round() / 255
    feats = judge.features(out[None], INDEPENDENT_LAYERS)
    rows.append(dict(weights=tag, style="mona", photo=pid, what=what,
                     style_distance=float(torch.stack(list(gram_distances(feats, target).values())).mean()),
                     **PQ.measure(ph, out, boxes)))
    sheet[pid] = [ph, out]
print(PQ.table(rows))
json.dump(rows, open(f"/tmp/mf/{tag}.json", "w"), indent=1)
PQ.write_sheet(sheet, f"/tmp/mf/{tag}.jpg")
