#!/usr/bin/env python3
"""Multi-GPU scaling of train-style and folder stylize through torchrun (issue 8).

    python3 benchmarks/ddp_scaling.py --style STYLE.jpg --photos DIR [--gpus 2] [--steps 240]

Training: the real ``cvtools train-style`` command under torchrun at 256 px; the rate is the
record's ``steady_images_per_second`` (timed inside the loop from the first log step after
warm-up to the end, so start-up, cudnn autotuning and DataLoader start are excluded). Runs:
1 GPU and N GPUs at the same global batch B (strong scaling, the default behaviour), both at
N×B (the per-GPU batch of the 1-GPU run), and N independent 1-GPU processes side by side (what
the host can feed at all: the ceiling for DDP).

Folder stylize: ``cvtools stylize`` over a folder of generated 1920×1080 JPEGs on 1 and N
processes; images/s from the command's own summary (first file started to last file written,
over all ranks; model loading excluded). NVLink multicast stays off (NCCL_NVLS_ENABLE=0,
TORCH_SYMM_MEM_DISABLE_MULTICAST=1).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = dict(os.environ, NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1",
           PYTHONUNBUFFERED="1")


def launch(nproc, args, device, env=None, log=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cvtools", *map(str, args), "--device", device]
    return subprocess.Popen(cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, log):
    out, _ = proc.communicate()
    if log:
        with open(log, "a") as fh:
            fh.write(f"\n==== {' '.join(proc.args)}\n{out}")
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(proc.args)}\n{out[-3000:]}")
    return out


def train_args(batch, steps, style, photos, out, size, extra=()):
    return ["train-style", style, "--photos", photos, "--name", "bench", "--batch-size", batch, "--image-size", size,
            "--steps", steps, "--preview-every", 0, "--checkpoint-every", 0, "-q", "-o", out, *extra]


def steady_rate(out):
    rec = json.loads((Path(out) / "bench.json").read_text())
    return rec["training"]["steady_images_per_second"]


def train_rate(nproc, batch, steps, a, tmp, tag, extra=()):
    out = tmp / f"train_{tag}"
    finish(launch(nproc, train_args(batch, steps, a.style, a.photos, out, a.size, extra), a.device), a.log)
    return steady_rate(out)


def independent_rate(n, batch, steps, a, tmp):
    """N single-GPU runs at once, one per GPU: the sum of their rates."""
    procs, outs = [], []
    for g in range(n):
        out = tmp / f"indep{g}"
        procs.append(launch(1, train_args(batch, steps, a.style, a.photos, out, a.size), a.device,
                            env=dict(ENV, CUDA_VISIBLE_DEVICES=str(g))))
        outs.append(out)
    for p in procs:
        finish(p, a.log)
    return [steady_rate(o) for o in outs]


def stylize_rate(nproc, folder, out, a):
    """images/s from the command's own summary line ("N images in T s (R img/s ...)"): the span
    from the first rank starting its files to the last rank finishing, model loading excluded."""
    import re

    proc = launch(nproc, ["stylize", folder, "--style", "mona", "-o", out / f"all{nproc}/"], a.device)
    text = finish(proc, a.log)
    m = re.findall(r"\(([0-9.]+) img/s", text)
    if not m:
        raise SystemExit(f"no rate in the output of {' '.join(proc.args)}\n{text[-2000:]}")
    return float(m[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--frame", default="1920x1080")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", choices=["train", "stylize"])
    ap.add_argument("--compile", action="store_true", help="also the --compile training runs")
    ap.add_argument("--json")
    ap.add_argument("--log", help="append every command's output here")
    a = ap.parse_args()
    fw, fh = map(int, a.frame.split("x"))
    n, b = a.gpus, a.batch
    results = {"steps": a.steps, "size": a.size}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.only in (None, "train"):
            t = {}
            t["1gpu_b"] = train_rate(1, b, a.steps, a, tmp, "1b")
            t["ngpu_b"] = train_rate(n, b, a.steps, a, tmp, "nb")
            t["1gpu_nb"] = train_rate(1, n * b, a.steps, a, tmp, "1nb")
            t["ngpu_nb"] = train_rate(n, n * b, a.steps, a, tmp, "nnb")
            t["independent_b"] = independent_rate(n, b, a.steps, a, tmp)
            if a.compile:
                t["1gpu_nb_compile"] = train_rate(1, n * b, a.steps, a, tmp, "1nbc", ["--compile"])
                t["ngpu_nb_compile"] = train_rate(n, n * b, a.steps, a, tmp, "nnbc", ["--compile"])
            results["train"] = t
            print(f"train-style {a.size}px, steady images/s ({a.steps} steps):")
            print(f"  global batch {b}: 1 GPU {t['1gpu_b']:.0f} | {n} GPUs {t['ngpu_b']:.0f} "
                  f"({t['ngpu_b'] / t['1gpu_b']:.2f}x)")
            print(f"  global batch {n * b}: 1 GPU {t['1gpu_nb']:.0f} | {n} GPUs {t['ngpu_nb']:.0f} "
                  f"({t['ngpu_nb'] / t['1gpu_nb']:.2f}x)")
            ind = t["independent_b"]
            print(f"  {n} independent 1-GPU runs at batch {b}: {' + '.join(f'{r:.0f}' for r in ind)} = "
                  f"{sum(ind):.0f} ({sum(ind) / t['1gpu_b']:.2f}x one alone)")
            if a.compile:
                print(f"  --compile, global batch {n * b}: 1 GPU {t['1gpu_nb_compile']:.0f} | {n} GPUs "
                      f"{t['ngpu_nb_compile']:.0f} ({t['ngpu_nb_compile'] / t['1gpu_nb_compile']:.2f}x)", flush=True)
        if a.only in (None, "stylize"):
            import torch

            from cvtools.io.atomic import save_image

            folder = tmp / "frames"
            folder.mkdir()
            g = torch.Generator().manual_seed(0)
            base = torch.nn.functional.interpolate(torch.rand(1, 3, fh // 32, fw // 32, generator=g), size=(fh, fw),
                                                   mode="bilinear")[0]
            for i in range(a.images):
                save_image(folder / f"f{i:04d}.jpg", base.roll(i * 5, dims=2), quality=90)
            s1 = stylize_rate(1, folder, tmp, a)
            sn = stylize_rate(n, folder, tmp, a)
            results["stylize"] = {"1": s1, str(n): sn, "images": a.images, "frame": a.frame}
            print(f"folder stylize {fw}x{fh} JPEG, {a.images} images: 1 GPU {s1:.1f} img/s | {n} GPUs "
                  f"{sn:.1f} img/s ({sn / s1:.2f}x)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
