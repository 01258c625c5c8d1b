"""Issue 31: each stage of the folder pipeline alone, at the thread counts a big host would give
it, to find which one caps the whole (95 img/s on the H200 host while the network alone does
~150 img/s batched eager, and decode + encode cost 32 ms of host time per photo).

    python3 benchmarks/folder/stage_ceilings.py --src /tmp/f512 --n 256 --json OUT.json

Prints img/s for: decode alone (Pillow, `load_image`) on T threads and on T processes; encode
alone (`save_image`, JPEG q95) on T threads and T processes; the device stage alone (pinned
uint8 batches of 8 through `Stylizer.stylize_batch`, host uint8 out); and, as the reference,
the staged command's own runner (`stylize_files`-like, folder_rate's "batched"). Threads that
fall well short of processes mean the GIL (or a lock) caps that stage."""
import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path


def _decode(path):
    from cvtools.io.decode import load_image

    return load_image(path).rgb.size  # decoded; nothing large goes back


_PICTURE = None


def _encode(args):
    import numpy as np
    from PIL import Image

    from cvtools.io.atomic import save_image

    global _PICTURE
    i, seed = args
    if _PICTURE is None:  # made once per worker: only the encode is timed
        rng = np.random.default_rng(seed)
        # a smooth picture (noise compresses unlike a photo): a gradient plus mild noise
        y, x = np.mgrid[0:1080, 0:1920]
        _PICTURE = ((x[..., None] * 0.1 + y[..., None] * 0.05 + rng.integers(0, 24, (1080, 1920, 3))) % 256).astype(np.uint8)
    t = time.perf_counter()
    save_image(Path(f"/tmp/ceil_enc/{i % 64}.jpg"), Image.fromarray(_PICTURE))
    return time.perf_counter() - t


def rate(pool_kind, workers, fn, items):
    pool = (ThreadPoolExecutor if pool_kind == "threads" else ProcessPoolExecutor)(workers)
    with pool:
        list(pool.map(fn, items[: workers * 2]))  # warm every worker
        t = time.perf_counter()
        out = list(pool.map(fn, items))
        return len(items) / (time.perf_counter() - t), out


def device_rate(src_files, device, batch=8, rounds=16):
    import numpy as np
    import torch

    from cvtools.io.decode import load_image
    from cvtools.style.stylize import Stylizer

    st = Stylizer("mona", device=device)
    pixels = [torch.from_numpy(np.array(load_image(p).rgb)) for p in src_files[:batch]]
    if device == "cuda":
        pixels = [t.pin_memory() for t in pixels]
    for _ in range(3):
        st.stylize_batch(pixels)
    t = time.perf_counter()
    for _ in range(rounds):
        st.stylize_batch(pixels)
    return batch * rounds / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/tmp/f512")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="+", default=[7, 14])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json")
    args = ap.parse_args()
    files = sorted(Path(args.src).glob("*.jpg"))[: args.n]
    os.makedirs("/tmp/ceil_enc", exist_ok=True)
    res = {"cpus": os.cpu_count(), "n": len(files)}
    for w in args.workers:
        for kind in ("threads", "processes"):
            res[f"decode_{kind}{w}"] = round(rate(kind, w, _decode, files)[0], 1)
            r, times = rate(kind, w, _encode, [(i, i) for i in range(len(files))])
            res[f"encode_{kind}{w}"] = round(r, 1)
            res[f"encode_{kind}{w}_ms_each"] = round(1e3 * sorted(times)[len(times) // 2], 1)
            print(json.dumps(res), flush=True)
    res["device_batch8"] = round(device_rate(files, args.device), 1)
    print(json.dumps(res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
