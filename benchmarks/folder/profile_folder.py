"""Issue 31: where a 1080p folder's time goes (per-image phases, steady medians).

On the lent GPU machine (staged .device/, see benchmarks/folder/README.md):
    bash benchmarks/folder/profile_folder.sh
Makes 32 1920x1080 JPEGs from the free photos in /tmp/f1080, then prints per-image medians of
PIL decode, one Stylizer call (eager and compiled; host uint8 in, host uint8 out), one
Stylizer.stylize_batch of K photos per image (pinned host uint8 in, host uint8 out: the folder's
batched device stage) and JPEG encode.
N=1 DEV=cpu runs it as a smoke test on a CPU."""
import json
import os
import statistics
import time
from pathlib import Path

from PIL import Image

src = Path(os.environ["CVTOOLS_SHARED"]) / "data/photos/free"
d = Path("/tmp/f1080"); d.mkdir(exist_ok=True)
N = int(os.environ.get("N", "32")); DEV = os.environ.get("DEV", "cuda")
files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:N]
for i, f in enumerate(files):
    Image.open(f).convert("RGB").resize((1920, 1080), Image.BICUBIC).save(d / f"p{i:02d}.jpg", quality=92)
paths = sorted(d.glob("*.jpg"))[:N]
K = min(8, N)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cvtools.io.atomic import save_image  # noqa: E402
from cvtools.io.decode import load_image  # noqa: E402
from cvtools.style.records import bundled_records  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402

rec = {r.name: r for r in bundled_records()}["mona"]


def med(f, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


res = {}
res["decode_ms"] = med(lambda: [load_image(p).rgb for p in paths[:K]], 3) / K * 1e3
imgs = [load_image(p).rgb for p in paths[:K]]
for comp in ((False, True) if DEV == "cuda" else (False,)):
    st = Stylizer(rec, device=DEV, compile=comp)
    for _ in range(3):
        out = st(imgs[0], as_uint8=True)
    if DEV == "cuda":
        torch.cuda.synchronize()
    res[f"stylize_call_ms_compile{int(comp)}"] = med(lambda: [st(im, as_uint8=True) for im in imgs], 3) / K * 1e3
    pixels = [torch.from_numpy(np.array(im)) for im in imgs]
    pixels = [t.pin_memory() for t in pixels] if DEV == "cuda" else pixels
    for _ in range(2):
        st.stylize_batch(pixels)
    res[f"stylize_batch{K}_ms_per_image_compile{int(comp)}"] = med(lambda: st.stylize_batch(pixels), 3) / K * 1e3
out = st(imgs[0], as_uint8=True)
res["out_type"] = str(type(out))
res["encode_ms"] = med(lambda: [save_image(Path(f"/tmp/enc{i}.jpg"), out) for i in range(K)], 3) / K * 1e3
print(json.dumps(res), flush=True)
