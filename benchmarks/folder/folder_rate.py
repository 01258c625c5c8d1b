"""Issue 31: a folder's steady rate through stylize's staged work, old path against new, one process.

    python benchmarks/folder/folder_rate.py [--src /tmp/f1080] [--n 512] [--device cuda] [--json FILE]

Builds one Stylizer (mona), makes ``--n`` inputs from the JPEGs in ``--src`` (hard links, so the
files are the same bytes under new names), and runs :func:`cvtools.style.job.stylize_work` over
them with :func:`cvtools.batch.run` in each configuration, after a warm-up run of 24 photos of the
same configuration (cuDNN, allocators, pinned buffers, the encoders' first calls):

- ``old``: one photo per forward pass, 4 loader and 4 writer threads (the path before issue 31);
- ``batched``: the defaults (batches of up to 8 on CUDA, I/O pools grown with the cores), the
  network eager (``compile=False``: the default would switch to a compiled form the machine's
  compile cache holds, which would mix the two here);
- ``batched+decode`` / ``batched+codec``: CVTOOLS_GPU_JPEG=decode / 1 (nvJPEG decode, and encode);
- with ``--compile``, ``batched+compiled``: the network compiled (the first call of each shape
  is paid in the warm-up; cvtools' compile cache serves a later process).

``--style painting.jpg`` runs the any-painting network instead (the painting encoded once; ``old``
is then the one-photo-a-pass path painting folders took before 2026-12-07), ``--strength 0.5`` with
it also encodes each photo's own style.

Prints one JSON object: images per second after the warm-up, per configuration, with the thread
counts and the batch sizes seen. On a CPU (``--device cpu --n 24``) it is a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def _inputs(src: Path, dst: Path, n: int):
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"no JPEGs in {src}")
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    paths = []
    for i in range(n):
        p = dst / f"i{i:04d}.jpg"
        try:
            os.link(files[i % len(files)], p)
        except OSError:
            shutil.copyfile(files[i % len(files)], p)
        paths.append(p)
    return paths


def _stylizer(style: str, device: str, compiled: bool):
    """A bundled style's network, or the any-painting network with a painting file encoded once."""
    if Path(style).is_file():
        from cvtools.style.painting import NetworkPaintingStylizer

        return NetworkPaintingStylizer([style], device=device, compile=compiled)
    from cvtools.style.stylize import Stylizer

    return Stylizer(style, device=device, compile=compiled)


def _run(st, paths, out: Path, env: dict, strength: float = 1.0):
    from cvtools import batch
    from cvtools.io.naming import Outputs
    from cvtools.style.job import stylize_provenance, stylize_work

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v for k, v in env.items() if v is not None})
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
    try:
        shutil.rmtree(out, ignore_errors=True)
        outputs = Outputs(stylize_provenance("mona"))
        work = stylize_work(st, output=str(out) + "/", many=True, inputs=paths, quiet=True, outputs=outputs,
                            device=str(st.device), strength=strength, name="style")
        sizes = []
        real = st.stylize_batch
        st.stylize_batch = lambda images, **k: sizes.append(len(images)) or real(images, **k)
        try:
            t0 = time.perf_counter()
            report = batch.run([str(p) for p in paths], work, outputs=outputs)
            seconds = time.perf_counter() - t0
        finally:
            del st.stylize_batch
        if report.failed:
            raise SystemExit(f"{len(report.failed)} failed, e.g. {report.failed[0]}")
        return {"images": len(report.done), "seconds": round(seconds, 3), "img_per_s": round(len(report.done) / seconds, 1),
                "threads": batch.io_threads(work), "batches": sorted(set(sizes)) or [1]}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/tmp/f1080")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--style", default="mona",
                    help="a bundled style, or a painting file: the any-painting network (NetworkPaintingStylizer)")
    ap.add_argument("--strength", type=float, default=1.0, help="below 1, a painting's photos are encoded too")
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    work = Path(os.environ.get("TMPDIR", "/tmp")) / "cvtools-folder-rate"
    paths = _inputs(Path(args.src), work / "in", args.n)
    warm = paths[:24]
    base = {"CVTOOLS_IO_THREADS": None, "CVTOOLS_STYLIZE_BATCH": None, "CVTOOLS_GPU_JPEG": None}
    configs = [("old", {**base, "CVTOOLS_IO_THREADS": "4", "CVTOOLS_STYLIZE_BATCH": "1"}, False),
               ("batched", base, False)]
    if args.device.startswith("cuda"):
        configs += [("batched+decode", {**base, "CVTOOLS_GPU_JPEG": "decode"}, False),
                    ("batched+codec", {**base, "CVTOOLS_GPU_JPEG": "1"}, False)]
    if args.compile:
        configs.append(("batched+compiled", base, True))
    result = {"device": str(args.device), "torch": torch.__version__, "cpus": os.cpu_count(), "n": args.n,
              "style": Path(args.style).name, "strength": args.strength, "rows": {}}
    stylizers = {}
    for name, env, compiled in configs:
        st = stylizers.get(compiled)
        if st is None:
            st = stylizers[compiled] = _stylizer(args.style, args.device, compiled)
        _run(st, warm, work / "warm", env, args.strength)
        result["rows"][name] = row = _run(st, paths, work / "out", env, args.strength)
        print(name, row, flush=True)
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
        result["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
