#!/usr/bin/env python3
"""H.264 encoding alone: one serial libx264 encoder against K chunk encoders in parallel
(cvtools/video/chunked.py), on frames already in memory.

    python3 benchmarks/video_encode_chunks.py --frames 240 --json out.json
    python3 benchmarks/video_encode_chunks.py --frames 120 --chunks 2 --size 1080p     # a 2-core machine
    python3 benchmarks/video_encode_chunks.py --frames 240 --size 4k --json out_4k.json

Needs numpy and PyAV (and cvtools from this checkout). The frames are made in code: a 1080p (or
4K) scene of fine multi-scale texture and thin strokes, like a style network's output, panned
3 px a frame, with a little fresh noise every frame (a network's frame-to-frame flicker), held
as yuv420p planes in memory and given to :class:`cvtools.video.io.VideoWriter` through
``write_planes`` (what ``cvtools stylize`` does on CUDA), with the GPU preset (superfast, CRF 18).

Each row: the encoders (1: the serial encoder), frames per chunk, frames per second of wall
time (writer opened to file closed), bytes of the mp4, and the luma PSNR of the decoded file to
the source frames (dB, mean over frames). Chunks are 2 s (60 frames) by default, so 240 frames
make only 4 of them: 8 encoders need ``--frames 480`` or more to all be busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160), "720p": (1280, 720)}
FPS = 30


def scene(w: int, h: int, frames: int, seed: int = 0):
    """A (h, w + 3·frames) grey-and-colour texture: noise at three scales plus strokes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    width = w + 3 * frames + 8
    total = np.zeros((h, width, 3), np.float32)
    for block, weight in ((16, 0.45), (4, 0.35), (1, 0.2)):
        small = rng.random((h // block + 1, width // block + 1, 3), dtype=np.float32)
        total += weight * np.kron(small, np.ones((block, block, 1), np.float32))[:h, :width]
    yy, xx = np.mgrid[0:h, 0:width].astype(np.float32)
    strokes = 0.5 + 0.5 * np.sin(xx * 0.21 + 7 * np.sin(yy * 0.013)) * np.cos(yy * 0.17)
    total = 0.7 * total + 0.3 * strokes[..., None]
    return (total * 255).clip(0, 255).astype(np.uint8)


def frames_as_planes(w: int, h: int, n: int):
    """n yuv420p frames ((h·3/2)×w uint8 each) of the scene panned 3 px a frame, noise added."""
    import av
    import numpy as np

    big = scene(w, h, n)
    rng = np.random.default_rng(1)
    out = []
    for k in range(n):
        rgb = big[:, 3 * k:3 * k + w].astype(np.int16) + rng.integers(-3, 4, (h, w, 1), dtype=np.int16)
        frame = av.VideoFrame.from_ndarray(rgb.clip(0, 255).astype(np.uint8), format="rgb24")
        out.append(frame.reformat(format="yuv420p", dst_colorspace="ITU709").to_ndarray())
    return out


def luma_psnr(path: Path, planes, h: int) -> float:
    import av
    import numpy as np

    scores = []
    with av.open(str(path)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            y = frame.to_ndarray()[:h].astype(np.float64)
            mse = float(np.mean((y - planes[k][:h]) ** 2))
            scores.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
    if len(scores) != len(planes):
        raise SystemExit(f"{path}: {len(scores)} frames decode, {len(planes)} written")
    return float(np.mean(scores))


def encode(path: Path, planes, w: int, h: int, chunks: int, preset: str, crf: int, chunk_frames=None) -> dict:
    from cvtools.video.io import VideoWriter

    t0 = time.perf_counter()
    writer = VideoWriter(path, w, h, FPS, crf=crf, preset=preset, chunks=chunks, chunk_frames=chunk_frames)
    used = writer.chunked
    for k, p in enumerate(planes):
        writer.write_planes(p, k / FPS)
    writer.close()
    seconds = time.perf_counter() - t0
    in_clip = -(-len(planes) // used.chunk_frames) if used else 1  # more encoders than chunks stay idle
    return {"encoders": used.chunks if used else 1, "chunk_frames": used.chunk_frames if used else None,
            "chunks_in_clip": in_clip,
            "seconds": round(seconds, 3), "fps": round(len(planes) / seconds, 2), "bytes": path.stat().st_size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--size", choices=sorted(SIZES), action="append", help="1080p (default), 4k, 720p; repeatable")
    ap.add_argument("--chunks", type=int, nargs="+", default=[2, 4, 8], help="encoders to compare with serial")
    ap.add_argument("--chunk-frames", type=int, default=None, help="frames per chunk (default: the writer's plan)")
    ap.add_argument("--preset", default="superfast")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--repeat", type=int, default=1, help="runs per row (the fastest is kept)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import av

    results = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "av": av.__version__, "preset": args.preset, "crf": args.crf, "frames": args.frames, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.size or ["1080p"]:
            w, h = SIZES[size]
            planes = frames_as_planes(w, h, args.frames)
            for chunks in [1] + [k for k in args.chunks if k > 1]:
                path = Path(tmp) / f"{size}_{chunks}.mp4"
                runs = [encode(path, planes, w, h, chunks, args.preset, args.crf, args.chunk_frames)
                        for _ in range(max(1, args.repeat))]
                row = dict(max(runs, key=lambda r: r["fps"]), size=size, psnr_y=round(luma_psnr(path, planes, h), 3))
                results["rows"].append(row)
                print(f"{size:6s} encoders {row['encoders']:2d}  chunk {str(row['chunk_frames']):>4s} frames  "
                      f"{row['fps']:7.1f} frames/s  {row['bytes']:>11,d} bytes  PSNR-Y {row['psnr_y']:.2f} dB"
                      f"{'  (only %d chunks)' % row['chunks_in_clip'] if row['chunks_in_clip'] < row['encoders'] else ''}",
                      flush=True)
                path.unlink()
            del planes
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
