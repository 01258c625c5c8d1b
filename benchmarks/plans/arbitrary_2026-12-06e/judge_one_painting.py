"""starry_night on the 12 quality photos, Lite2 (painting at its style size 512): A5 vs the one-painting runs vs trained."""
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, "/work/main")
import torch

from cvtools.backbones import load_backbone
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.arbitrary import ArbitraryStylizer
from cvtools.style.losses import gram_distances, style_target
from cvtools.style.records import bundled_records
from cvtools.style.stylize import Stylizer, resize_long_side
from tools.arbitrary_quality import painting_file, pick_photos
from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS

torch.set_num_threads(2)
shared = Path("/work/shared"); name = sys.argv[1] if len(sys.argv) > 1 else "starry_night"
photos = pick_photos(shared)
judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
img = load_image(painting_file(shared, name)).rgb
rec = {r.name: r for r in bundled_records()}[name]
tgt = style_target(judge, pil_to_tensor(resize_long_side(img, int(rec.recipe.get("style_size", 512)))), INDEPENDENT_LAYERS)
def d(y):
    y = (y.clamp(0, 1) * 255).round() / 255
    with torch.no_grad():
        f = judge.features(y.float().unsqueeze(0), INDEPENDENT_LAYERS)
        return float(torch.stack(list(gram_distances(f, tgt).values())).mean())
art = pil_to_tensor(img)
models = {"A5": ArbitraryStylizer(device="cpu")}
for run in sys.argv[2:]:
    models[Path(run).name] = ArbitraryStylizer(weights=str(Path(run) / "arbitrary.safetensors"), device="cpu")
trained = Stylizer(rec, device="cpu", precision="fp32")
emb = {k: m.encode(art) for k, m in models.items()}
rows = {k: [] for k in list(models) + ["trained"]}
out = Path("/tmp/amort/pics"); out.mkdir(exist_ok=True)
from torchvision.utils import save_image

with torch.no_grad():
    for i, (s, p, _) in enumerate(photos):
        x = pil_to_tensor(load_image(p).rgb)
        for k, m in models.items():
            y = m.stylize(x, emb[k]); rows[k].append(d(y))
            if i < 3: save_image(y, out / f"{s}_{k}.png")
        y = trained(x, tile=None); rows["trained"].append(d(y))
        if i < 3: save_image(y, out / f"{s}_trained.png")
m = {k: statistics.mean(v) for k, v in rows.items()}
print(name, {k: round(v, 4) for k, v in m.items()}, {k: round(v / m["trained"], 3) for k, v in m.items()})
Path(f"/tmp/amort/judge_{name}.json").write_text(json.dumps({"mean": m, "rows": rows}, indent=1))
