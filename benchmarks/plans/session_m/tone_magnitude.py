import glob, json, torch
from cvtools.io.decode import load_image, pil_to_tensor
from cvtools.style.stylize import Stylizer, resize_long_side
from cvtools.style.losses import tone_distance
torch.set_grad_enabled(False)
photos = sorted(glob.glob('/work/shared/data/photos/free/*'))[:12]
xs = [pil_to_tensor(resize_long_side(load_image(p).rgb, 256)) for p in photos]
for s in ["mona", "scream", "starry_night", "great_wave"]:
    o = json.load(open(f'styles/{s}.json'))['recipe']['objective']
    sc = o.get('tone_scale', 8)
    st = Stylizer(s, device="cpu", precision="fp32")
    acc = {"plain": 0, "log": 0, "rel_log": 0}
    for x in xs:
        y = st(x, tile=None).clamp(0, 1)
        x1 = x[None] if x.dim() == 3 else x
        y1 = y[None] if y.dim() == 3 else y
        acc["plain"] += float(tone_distance(y1, x1, sc)) / len(xs)
        acc["log"] += float(tone_distance(y1, x1, sc, log=True)) / len(xs)
        acc["rel_log"] += float(tone_distance(y1, x1, sc, log=True, relative=True)) / len(xs)
    w = o["tone_weight"]
    print(s, {k: round(v, 5) for k, v in acc.items()}, "log/plain", round(acc["log"] / acc["plain"], 2),
          "rel/plain", round(acc["rel_log"] / acc["plain"], 2), "rel weight at plain share", round(w * acc["plain"] / acc["rel_log"], 2))
