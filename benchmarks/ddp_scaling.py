#!/usr/bin/env python3
"""Multi-GPU scaling of train-style and folder stylize through torchrun (issue 8).

    python3 benchmarks/ddp_scaling.py --style STYLE.jpg --photos DIR [--gpus 2] [--steps 300]

For 1 and N processes it runs the real commands:
- ``cvtools train-style`` at 256 px for --steps steps, global batch B (the same on 1 and N GPUs)
  and, for weak scaling, N×B on N GPUs; images/s is taken from the steady part of the run
  (the style record's own rate includes start-up, so we time two run lengths and difference them);
- ``cvtools stylize`` over a folder of generated 1920×1080 JPEGs; images/s from wall time minus
  the time of a one-image run (model load and start-up).
NVLink multicast stays off (NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = dict(os.environ, NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1",
           PYTHONUNBUFFERED="1")


def torchrun(nproc, args, device):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cvtools", *map(str, args), "--device", device]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return dt


def train_rate(nproc, batch, steps, style, photos, out, size, device):
    """Steady-state images/s: time `steps` and `steps // 3` and difference them (start-up,
    autotuning and the first checkpoint cancel out)."""
    common = ["train-style", style, "--photos", photos, "--name", "bench", "--batch-size", batch,
              "--image-size", size, "--preview-every", 0, "--checkpoint-every", 0, "-q"]
    short = max(10, steps // 3)
    t_short = torchrun(nproc, common + ["--steps", short, "-o", out / f"s{nproc}_{batch}"], device)
    t_long = torchrun(nproc, common + ["--steps", steps, "-o", out / f"l{nproc}_{batch}"], device)
    return (steps - short) * batch / (t_long - t_short)


def stylize_rate(nproc, folder, n, out, device):
    one = folder.parent / "one"
    one.mkdir(exist_ok=True)
    first = sorted(folder.glob("*.jpg"))[0]
    (one / first.name).write_bytes(first.read_bytes())
    t_one = torchrun(nproc, ["stylize", one, "--style", "mona", "-o", out / f"one{nproc}/", "-q"], device)
    t_all = torchrun(nproc, ["stylize", folder, "--style", "mona", "-o", out / f"all{nproc}/", "-q"], device)
    return (n - 1) / (t_all - t_one)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--frame", default="1920x1080")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    a = ap.parse_args()
    fw, fh = map(int, a.frame.split("x"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        r1 = train_rate(1, a.batch, a.steps, a.style, a.photos, tmp, a.size, a.device)
        rn = train_rate(a.gpus, a.batch, a.steps, a.style, a.photos, tmp, a.size, a.device)
        rw = train_rate(a.gpus, a.batch * a.gpus, a.steps, a.style, a.photos, tmp, a.size, a.device)
        results["train"] = {"1": r1, f"{a.gpus}_same_global_batch": rn, f"{a.gpus}_batch_x{a.gpus}": rw}
        print(f"train-style {a.size}px: 1 GPU batch {a.batch}: {r1:.0f} img/s | {a.gpus} GPUs global batch "
              f"{a.batch}: {rn:.0f} img/s ({rn / r1:.2f}x) | {a.gpus} GPUs global batch {a.batch * a.gpus}: "
              f"{rw:.0f} img/s ({rw / r1:.2f}x)", flush=True)
        import torch

        from cvtools.imageio import save_image

        folder = tmp / "frames"
        folder.mkdir()
        g = torch.Generator().manual_seed(0)
        base = torch.nn.functional.interpolate(torch.rand(1, 3, fh // 32, fw // 32, generator=g), size=(fh, fw),
                                               mode="bilinear")[0]
        for i in range(a.images):
            save_image(folder / f"f{i:04d}.jpg", base.roll(i * 5, dims=2), quality=90)
        s1 = stylize_rate(1, folder, a.images, tmp, a.device)
        sn = stylize_rate(a.gpus, folder, a.images, tmp, a.device)
        results["stylize"] = {"1": s1, str(a.gpus): sn}
        print(f"folder stylize {fw}x{fh} JPEG, {a.images} images: 1 GPU {s1:.1f} img/s | {a.gpus} GPUs "
              f"{sn:.1f} img/s ({sn / s1:.2f}x)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
