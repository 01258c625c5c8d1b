"""Re-time the CPU figures the README quotes, as a user gets them: whole commands as written
(a fresh process each, `cvtools ...` from the entry point, wall time and user+sys CPU time),
and the per-method table of `cvtools visualize` (one 224x352 photo, one CPU thread, in-process
after a warm-up). Medians of ``--repeat`` runs. Run it on a quiet machine: nothing else busy.

    python3 tools/readme_timings.py --repeat 3 --markdown > timings.md
    python3 tools/readme_timings.py --only methods          # just the visualize table

Inputs are made from samples/ (astronaut is 512x512; a 1920x1080 and a 1024x683 photo are the
rocket sample resized), in a temporary folder; nothing is written into the checkout.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def make_photos(folder: Path) -> dict:
    from PIL import Image

    photos = {"512x512": folder / "p512.jpg", "1024x683": folder / "p1024.jpg", "1920x1080": folder / "p1080.jpg",
              "224x352": folder / "p224.jpg"}
    shutil.copy(SAMPLES / "astronaut.jpg", photos["512x512"])
    rocket = Image.open(SAMPLES / "rocket.jpg").convert("RGB")
    rocket.resize((1024, 683), Image.LANCZOS).save(photos["1024x683"], quality=95)
    rocket.resize((1920, 1080), Image.LANCZOS).save(photos["1920x1080"], quality=95)
    Image.open(SAMPLES / "chelsea.jpg").convert("RGB").resize((352, 224), Image.LANCZOS).save(
        photos["224x352"], quality=95)
    return photos


def whole_command(args, repeat: int, workdir: Path):
    """Median wall and user+sys CPU seconds of ``cvtools ARGS`` in fresh processes (outputs into
    a scratch folder, replaced each run so every run does the work)."""
    exe = shutil.which("cvtools") or sys.executable
    prefix = [exe] if exe.endswith("cvtools") else [exe, "-m", "cvtools"]
    walls, cpus = [], []
    for _ in range(repeat):
        out = workdir / "out"
        shutil.rmtree(out, ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        writes = args[0] != "classify"  # classify prints; the others write files
        extra = ["-o", f"{out}/", "-q"] if writes else ["-q"]
        p = subprocess.run(prefix + [str(a) for a in args] + extra, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if p.returncode != 0:
            raise SystemExit(f"cvtools {' '.join(map(str, args))} failed: {p.stderr.strip()[-400:]}")
    return statistics.median(walls), statistics.median(cpus)


COMMANDS = [
    ("stylize 512x512", ["stylize", "{512x512}", "--style", "mona"]),
    ("stylize 1920x1080", ["stylize", "{1920x1080}", "--style", "mona"]),
    ("dream 512x512", ["dream", "{512x512}"]),
    ("dream 1024x683", ["dream", "{1024x683}"]),
    ("dream 1920x1080", ["dream", "{1920x1080}"]),
    ("classify 512x512", ["classify", "{512x512}"]),
    ("visualize gradcam 512x512", ["visualize", "gradcam", "{512x512}"]),
]

METHODS = ["gradcam", "gradcam++", "layercam", "hirescam", "xgradcam", "eigencam", "ablationcam", "saliency",
           "input-x-gradient", "smoothgrad", "integrated-gradients", "guided-backprop", "guided-gradcam", "occlusion",
           "scorecam"]


def method_times(photo: Path, repeat: int, methods=METHODS):
    """Seconds per method on one 224x352 photo with one CPU thread (fp32), median after a warm-up:
    the README's per-method table. integrated-gradients at 50 steps (not auto), smoothgrad 32."""
    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.decode import load_image
    from cvtools.visualize.explain import Explainer, analysis_tensor

    torch.set_num_threads(1)
    backbone = load_backbone(device="cpu", precision="fp32")
    x = analysis_tensor(load_image(photo).rgb, 224)[None]
    rows = {}
    for m in methods:
        explainer = Explainer(backbone, [m], steps=50, samples=32, internal_batch_size=32)
        explainer.explain(x)  # warm-up
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            explainer.explain(x)
            times.append(time.perf_counter() - t)
        rows[m] = statistics.median(times)
        print(f"  {m:<22} {rows[m]:.3f} s", file=sys.stderr)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["commands", "methods"], default=None)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    import torch

    print(f"# {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, median of {args.repeat}")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        photos = make_photos(work)
        if args.only in (None, "commands"):
            print("| command (as written, cold process) | wall s | user+sys CPU s |\n| --- | --- | --- |")
            for label, cmd in COMMANDS:
                wall, cpu = whole_command([c.format(**photos) for c in cmd], args.repeat, work)
                print(f"| `cvtools {label}` | {wall:.2f} | {cpu:.2f} |", flush=True)
        if args.only in (None, "methods"):
            print("\n| method | one 224x352 photo, one CPU thread |\n| --- | --- |")
            for m, s in method_times(photos["224x352"], args.repeat).items():
                print(f"| `{m}` | {s:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
