"""Issue 31: a folder's photos decoded in worker processes (``CVTOOLS_DECODE_PROCESSES``) against
the loader threads, from the pool's start-up to the whole command.

    python3 benchmarks/folder/decode_pool_rate.py --src DIR --n 512 --json out.json
        [--settings 0 7 14] [--parts startup decode staged command] [--device cuda] [--repeat 2]

``--src``: a folder of JPEGs (1080p on the GPU host: /tmp/f1080 from profile_folder.py); with
``--make N`` it is first filled with N 1920×1080 JPEGs (quality 92) made from samples/*.jpg. The
``--n`` inputs are hard links to them under new names. Each setting is a value of
CVTOOLS_DECODE_PROCESSES (0: the loader threads decode, as before this change). Parts, each
printed as a JSON line as it ends:

- ``startup``: a pool of N workers from nothing until every worker has answered one photo (spawn
  + imports + one decode), median of 3, for each N > 0; and one worker's spawn + imports alone;
- ``decode``: decoding alone as the stylize loaders do it (``decode_resized``, the pixels copied
  out), on N threads against N threads each driving a worker, img/s after a warm-up;
- ``staged``: the stylize work over the ``--n`` inputs in this process (one eager Stylizer,
  built once; a warm-up run of 24 photos per setting, then the timed run), img/s;
- ``command``: whole ``python3 -m cvtools stylize DIR -s mona -o OUT -q`` per setting in a fresh
  process, ``--repeat`` rounds interleaved; whole seconds and img/s after imports (the
  ``CVTOOLS_TIMINGS`` marks: ``exit`` − ``imports``), medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_photos(dst: Path, n: int):
    """``n`` 1920×1080 JPEGs from samples/*.jpg (scaled, cropped, mirrored, turned in hue)."""
    import numpy as np
    from PIL import Image, ImageOps

    dst.mkdir(parents=True, exist_ok=True)
    samples = sorted((ROOT / "samples").glob("*.jpg"))
    for i in range(n):
        im = ImageOps.fit(Image.open(samples[i % len(samples)]).convert("RGB"), (1920, 1080), Image.LANCZOS,
                          centering=((i * 0.37) % 1.0, 0.5))
        if i // len(samples) % 2:
            im = ImageOps.mirror(im)
        arr = np.roll(np.asarray(im), i % 3, axis=2) if i >= 2 * len(samples) else np.asarray(im)
        Image.fromarray(arr).save(dst / f"src{i:03d}.jpg", quality=92)


def inputs(src: Path, dst: Path, n: int):
    """``n`` inputs in ``dst``: the JPEGs of ``src`` linked (or copied) round-robin, as folder_rate does."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from folder_rate import _inputs

    if not any(p.suffix.lower() in (".jpg", ".jpeg") for p in src.iterdir()):
        raise SystemExit(f"no JPEGs in {src} (--make N makes some)")
    return _inputs(src, dst, n)


def startup(settings, photo) -> dict:
    """Seconds from nothing to every worker having decoded ``photo`` once, median of 3."""
    from cvtools.io.decode_pool import DecodePool

    out = {}
    for n in [1] + [s for s in settings if s > 0]:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            pool = DecodePool(n)
            with ThreadPoolExecutor(n) as threads:  # n at once: each worker takes one
                list(threads.map(lambda _: _copied(pool, photo), range(n)))
            times.append(time.perf_counter() - t)
            pool.close()
        out[f"pool{n}_first_photo_each_s"] = round(statistics.median(times), 3)
    code = "import cvtools.io.decode, cvtools.ops"
    t = time.perf_counter()
    for _ in range(5):
        subprocess.run([sys.executable, "-c", code], check=True)
    out["one_worker_spawn_and_imports_s"] = round((time.perf_counter() - t) / 5, 3)
    return out


def _copied(pool, path):
    with pool.decode(path, None, None, False) as decoded:
        return decoded.rgb.copy()


def _in_thread(path):
    import numpy as np

    from cvtools.io.decode_pool import decode_resized

    return np.array(decode_resized(path, None, None, False)[0])


def decode_rates(settings, paths) -> dict:
    """img/s of decoding alone: N threads against N workers (driven by N threads)."""
    from cvtools.io.decode_pool import DecodePool

    out = {}
    for n in [s for s in settings if s > 0]:
        with ThreadPoolExecutor(n) as threads:
            list(threads.map(_in_thread, paths[: 2 * n]))  # warm-up
            t = time.perf_counter()
            list(threads.map(_in_thread, paths))
            out[f"threads{n}_img_s"] = round(len(paths) / (time.perf_counter() - t), 1)
        pool = DecodePool(n)
        try:
            with ThreadPoolExecutor(n) as threads:
                list(threads.map(lambda p: _copied(pool, p), paths[: 2 * n]))
                t = time.perf_counter()
                list(threads.map(lambda p: _copied(pool, p), paths))
                out[f"processes{n}_img_s"] = round(len(paths) / (time.perf_counter() - t), 1)
        finally:
            pool.close()
    return out


def _staged_run(st, paths, out: Path, processes: int) -> float:
    from cvtools import batch
    from cvtools.io.naming import Outputs
    from cvtools.style.job import stylize_provenance, stylize_work

    os.environ["CVTOOLS_DECODE_PROCESSES"] = str(processes)
    shutil.rmtree(out, ignore_errors=True)
    outputs = Outputs(stylize_provenance("mona"))
    work = stylize_work(st, output=str(out) + "/", many=True, inputs=paths, quiet=True, outputs=outputs,
                        device=str(st.device))
    try:
        t = time.perf_counter()
        report = batch.run([str(p) for p in paths], work, outputs=outputs)
        seconds = time.perf_counter() - t
    finally:
        work.close()
    if report.failed:
        raise SystemExit(f"{len(report.failed)} failed, e.g. {report.failed[0]}")
    return len(report.done) / seconds


def staged(settings, paths, device, tmp: Path) -> dict:
    """img/s of the stylize work in this process, per setting (each after its own warm-up)."""
    from cvtools.style.stylize import Stylizer

    st = Stylizer("mona", device=device, compile=False)
    out = {}
    for n in settings:
        _staged_run(st, paths[:24], tmp / "warm", n)
        out[f"staged_processes{n}_img_s"] = round(_staged_run(st, paths, tmp / "out", n), 1)
        print(json.dumps(out), flush=True)
    os.environ.pop("CVTOOLS_DECODE_PROCESSES", None)
    return out


def command(settings, folder: Path, n: int, repeat: int, tmp: Path) -> dict:
    """The whole command per setting, fresh processes, rounds interleaved: medians."""
    runs = {s: [] for s in settings}
    for _ in range(repeat):
        for s in settings:
            shutil.rmtree(tmp / "cmd", ignore_errors=True)
            marks = tmp / "marks.json"
            env = dict(os.environ, CVTOOLS_DECODE_PROCESSES=str(s), CVTOOLS_TIMINGS=str(marks),
                       CVTOOLS_TIMINGS_T0=str(time.time()))
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cvtools", "stylize", str(folder), "-s", "mona", "-o",
                            str(tmp / "cmd"), "-q"], env=env, check=True)
            whole = time.perf_counter() - t
            m = json.loads(marks.read_text())
            runs[s].append((whole, n / max(1e-9, m["exit"] - m.get("imports", 0.0)), m))
    out = {}
    for s, rows in runs.items():
        out[f"command_processes{s}_whole_s"] = round(statistics.median(r[0] for r in rows), 2)
        out[f"command_processes{s}_img_s_after_imports"] = round(statistics.median(r[1] for r in rows), 1)
        out[f"command_processes{s}_marks"] = rows[-1][2]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="/tmp/f1080")
    ap.add_argument("--make", type=int, default=0, help="first fill --src with this many 1080p JPEGs")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--settings", type=int, nargs="+", default=[0, 7, 14])
    ap.add_argument("--parts", nargs="+", default=["startup", "decode", "staged", "command"])
    ap.add_argument("--device", default=None, help="for staged (default: cuda when there is one)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.make:
        make_photos(Path(args.src), args.make)
    tmp = Path(tempfile.mkdtemp(prefix="decode-pool-rate-"))
    result = {"cpus": os.cpu_count(), "n": args.n, "settings": args.settings, "python": sys.version.split()[0]}
    try:
        paths = inputs(Path(args.src), tmp / "in", args.n)
        for part in args.parts:
            if part == "startup":
                result.update(startup(args.settings, paths[0]))
            elif part == "decode":
                result.update(decode_rates(args.settings, paths))
            elif part == "staged":
                result.update(staged(args.settings, paths, args.device or _default_device(), tmp))
            elif part == "command":
                result.update(command(args.settings, tmp / "in", args.n, args.repeat, tmp))
            print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    main()
