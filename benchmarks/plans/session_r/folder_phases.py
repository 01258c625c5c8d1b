"""Session r: where a folder's time goes on a GPU, bundled style (mona) against the any-painting network.

Session q measured a folder of 1080p JPEGs at 51.8 photos/s with mona's trained network and 110.6 with the
any-painting network (same harness, same machine), though mona's network alone runs 128 frames/s eager
(BENCHMARKS.md): neither rate is the network's. This runs benchmarks/folder/folder_rate.py's `_run` (the batched
defaults, after its warm-up) with the main thread's phases timed: waiting for loaded photos (batch._Stages.mates /
compute_next), the upload (stylize.upload_batch), the network + finish (synchronised), the copy back
(stylize.batch_results), and waiting for writers (batch._Stages.finished). Run on the device after
`source .device/setup.sh`:  python3 benchmarks/plans/session_r/folder_phases.py STYLE [--n 256]
"""
import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, "benchmarks/folder")
import folder_rate  # noqa: E402
import torch  # noqa: E402

from cvtools import batch  # noqa: E402
from cvtools.style import stylize as stylize_module  # noqa: E402

spent = defaultdict(float)
calls = defaultdict(int)


def timed(name, fn, sync=False):
    def wrapper(*a, **k):
        if sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            if sync and torch.cuda.is_available():
                torch.cuda.synchronize()
            spent[name] += time.perf_counter() - t
            calls[name] += 1
    return wrapper


def timed_generator(name, fn):
    """The time spent inside a generator's steps (batch._Stages.finished yields outcomes)."""
    def wrapper(*a, **k):
        gen = fn(*a, **k)
        while True:
            t = time.perf_counter()
            try:
                value = next(gen)
            except StopIteration:
                spent[name] += time.perf_counter() - t
                return
            spent[name] += time.perf_counter() - t
            yield value
    return wrapper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("style")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--src", default="/tmp/f1080")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--queued", type=int, choices=(0, 1), default=1,
                    help="job.QUEUED_COPY_BACK: 1 the copy back queued (session r), 0 waited for (before)")
    args = ap.parse_args()
    paths = folder_rate._inputs(Path(args.src), Path("/tmp/phases_in"), args.n)
    from cvtools.style import job

    job.QUEUED_COPY_BACK = bool(args.queued)
    st = folder_rate._stylizer(args.style, args.device, False)
    env = {"CVTOOLS_IO_THREADS": None, "CVTOOLS_STYLIZE_BATCH": None, "CVTOOLS_GPU_JPEG": None}
    folder_rate._run(st, paths[:24], Path("/tmp/phases_warm"), env)
    stylize_module.upload_batch = timed("upload", stylize_module.upload_batch)
    stylize_module.batch_results = timed("copy back", stylize_module.batch_results)
    st.stylize_tensor = timed("network (synchronised)", st.stylize_tensor, sync=True)
    batch._Stages.mates = timed("waiting for loads (mates)", batch._Stages.mates)
    batch._Stages.finished = timed_generator("waiting for writers", batch._Stages.finished)
    batch._Stages.compute_next = timed("the main thread per item or group (compute_next)", batch._Stages.compute_next)
    real_compute = batch._Stages.computed
    batch._Stages.computed = timed("a batch's compute, all of it", real_compute)
    spent.clear()
    calls.clear()
    t0 = time.perf_counter()
    out_dir = Path(f"/tmp/phases_out_{Path(args.style).stem}_{args.queued}")
    row = folder_rate._run(st, paths, out_dir, env)
    wall = time.perf_counter() - t0
    import hashlib

    digest = hashlib.sha256()
    for f in sorted(out_dir.iterdir()):  # the outputs' bytes, to compare the two paths
        digest.update(f.name.encode() + f.read_bytes())
    out = {"style": Path(args.style).name, "queued": args.queued, "outputs_sha256": digest.hexdigest()[:16], "row": row, "wall_s": round(wall, 3),
           "phases_s": {k: round(v, 3) for k, v in spent.items()}, "calls": dict(calls),
           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "torch": torch.__version__}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
