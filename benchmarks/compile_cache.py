"""A second process's first compiled call, cold cache against warm (issue 31, item 3).

    python benchmarks/compile_cache.py [--device cuda] [--size 1920x1080] [--batch 1] [--runs 3]
        [--folder 48] [--json PATH]

Each run is a fresh Python process with its own ``CVTOOLS_CACHE_DIR``: "cold" runs start from an
empty one (what the first compiled run on a machine pays), "warm" runs share one that a first run
filled (what every later process pays once ``cvtools bench --warm`` or a compiled run has been
made). Each process times importing cvtools and torch, building the Stylizer (bundled ``mona``,
the default precision and layout), the first call (eager, or compiled: the compiler's import
included) and the median of 5 steady calls. ``--folder N``: also the whole command
``cvtools stylize DIR`` on N JPEGs of the size (the torch path: ``CVTOOLS_TORCH_FREE=0``),
eager (``--no-compile``), the default (no flag: on CUDA it switches to the cached compiled network
once the run has spent that shape's recorded load time; on a CPU it is eager) and ``--compile``,
all three with the warm cache, ``--runs`` times each, interleaved.
Prints medians and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from cvtools.style.stylize import Stylizer
t_import = time.perf_counter() - t0
device, shape, compiled = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
t = time.perf_counter()
st = Stylizer("mona", device=device, compile=compiled)
x = torch.rand(*shape).to(st.device)
def sync():
    if st.device.type == "cuda":
        torch.cuda.synchronize(st.device)
sync()
t_build = time.perf_counter() - t
t = time.perf_counter()
st.stylize_tensor(x)
sync()
t_first = time.perf_counter() - t
steady = []
for _ in range(5):
    t = time.perf_counter()
    st.stylize_tensor(x)
    sync()
    steady.append(time.perf_counter() - t)
print("RESULT " + json.dumps({"import_s": t_import, "build_s": t_build, "first_s": t_first,
                              "steady_ms": sorted(steady)[2] * 1e3, "dtype": str(st.dtype)}))
"""


def child(device, shape, compiled, cache):
    env = {**os.environ, "CVTOOLS_CACHE_DIR": str(cache)}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("TRITON_CACHE_DIR", None)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, device, json.dumps(shape), "1" if compiled else "0"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "process_s": wall}
    raise RuntimeError(proc.stderr[-2000:])


def folder_command(device, folder, out, compiled, cache):
    env = {**os.environ, "CVTOOLS_CACHE_DIR": str(cache), "CVTOOLS_TORCH_FREE": "0"}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    t = time.perf_counter()
    flag = [] if compiled is None else ["--compile" if compiled else "--no-compile"]
    proc = subprocess.run([sys.executable, "-m", "cvtools", "stylize", str(folder), "-s", "mona", "--device", device,
                           "-o", f"{out}/", "--overwrite", "-q", *flag],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return time.perf_counter() - t


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="512x512", help="WxH")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--folder", type=int, default=0, metavar="N")
    ap.add_argument("--json")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    shape = [args.batch, 3, h, w]
    result = {"device": args.device, "shape": shape, "python": sys.version.split()[0],
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        eager = [child(args.device, shape, False, tmp / "eager") for _ in range(args.runs)]
        cold = [child(args.device, shape, True, tmp / f"cold{i}") for i in range(args.runs)]
        warm_dir = tmp / "cold0"  # filled by the first cold run
        warm = [child(args.device, shape, True, warm_dir) for _ in range(args.runs)]
        import torch

        result.update(torch=torch.__version__, eager=eager, cold=cold, warm=warm)
        for name, rows in (("eager", eager), ("compiled, cold cache", cold), ("compiled, warm cache", warm)):
            print(f"{name:<22} import {med(rows, 'import_s'):5.2f} s  build {med(rows, 'build_s'):5.2f} s  "
                  f"first call {med(rows, 'first_s'):6.2f} s  steady {med(rows, 'steady_ms'):8.1f} ms  "
                  f"process {med(rows, 'process_s'):6.2f} s   ({rows[0]['dtype']}, {len(rows)} runs)")
        if args.folder:
            from PIL import Image

            folder = tmp / "photos"
            folder.mkdir()
            g = torch.Generator().manual_seed(0)
            for i in range(args.folder):
                small = torch.rand(3, max(1, h // 16), max(1, w // 16), generator=g)
                img = torch.nn.functional.interpolate(small[None], size=(h, w), mode="bilinear")[0]
                Image.fromarray((img.permute(1, 2, 0).numpy() * 255).astype("uint8")).save(folder / f"p{i:03d}.jpg")
            variants = {"eager (--no-compile)": False, "default": None, "--compile, warm cache": True}
            runs = {name: [] for name in variants}
            for _ in range(args.runs):  # interleaved: a busy neighbour slows all alike
                for name, compiled in variants.items():
                    runs[name].append(folder_command(args.device, folder, tmp / "out", compiled, warm_dir))
            result["folder"] = {"images": args.folder, **runs}
            for name, times in runs.items():
                print(f"cvtools stylize DIR ({args.folder} x {w}x{h}), {name:<22} "
                      f"{statistics.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
