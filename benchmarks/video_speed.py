#!/usr/bin/env python3
"""Video stylize speed, end to end (decode → stylize → encode), with each phase alone.

    python benchmarks/video_speed.py                          # 1080p, 240 frames; CUDA if there is one
    python benchmarks/video_speed.py --size 320x180 --frames 48 --device cpu    # a quick CPU figure
    python benchmarks/video_speed.py --presets veryfast,superfast --json out.json

The test clip is made in code (no files needed): a photo from samples/ panned and zoomed across
the frame at 30 fps, H.264 (ultrafast, CRF 18) with a 440 Hz AAC track, so decoding and the
stylized output have real detail to code. Rows:

- ``decode``: read_frames alone (PyAV, frame threads, RGB conversion) over the whole clip;
- ``compute``: the style network alone on frames already in memory, batched as stylize_video
  batches them (8-bit upload, fp16 channels-last on CUDA, 8-bit download), synchronised;
- ``encode <preset>``: write_video alone of already-stylized frames (RGB→yuv420p + libx264 CRF 18);
- ``end to end <preset>``: stylize_video (what `cvtools stylize clip.mp4` runs), with the audio
  copied, written atomically; its phase seconds overlap (decode and encode run in threads). On
  CUDA frames travel as yuv420p planes converted on the GPU; ``--rgb`` adds a row with RGB
  frames converted by FFmpeg on the CPU (the path for resized, rotated or stabilized clips);
- ``end to end <preset> stable`` (``--stable``): the same with ``--stable``'s stabilizer
  (``stabilizer_for``, what ``--stable`` builds: phase lock with the optical flow in the decoder's thread,
  crop and carry or blend on the device), RGB frames.

Frames per second are frames / wall seconds. The end-to-end rate is bounded by the slowest
stage, not their sum, when the pipeline overlaps as intended.
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


def make_clip(path: Path, w: int, h: int, frames: int, fps: int = 30) -> Path:
    """A pan-and-zoom over samples/astronaut.jpg (or a synthetic pattern) with a sine track."""
    import av
    import numpy as np
    from PIL import Image

    photo = ROOT / "samples" / "astronaut.jpg"
    if photo.is_file():
        src = Image.open(photo).convert("RGB")
    else:
        yy, xx = np.mgrid[0:512, 0:512]
        src = Image.fromarray(np.stack([xx % 256, yy % 256, (xx ^ yy) % 256], -1).astype(np.uint8))
    # big enough to pan across: 1.4x the frame
    scale = 1.4 * max(w / src.width, h / src.height)
    big = np.asarray(src.resize((round(src.width * scale), round(src.height * scale)), Image.BILINEAR))
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    v.options = {"preset": "ultrafast", "crf": "18"}
    a = c.add_stream("aac", rate=48000)
    a.layout = "mono"
    bh, bw = big.shape[:2]
    for k in range(frames):
        t = k / max(1, frames - 1)
        y0 = round((bh - h) * t)
        x0 = round((bw - w) * (0.5 + 0.5 * np.sin(2 * np.pi * t)))
        img = np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])
        for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    total = 48000 * frames // fps
    pcm = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / 48000)).astype(np.float32)
    for k in range(0, total, 1024):
        fr = av.AudioFrame.from_ndarray(pcm[None, k:k + 1024], format="flt", layout="mono")
        fr.sample_rate, fr.pts = 48000, k
        for p in a.encode(fr):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)
    c.close()
    return path


class OneAtATime:
    """A stylizer seen through its one-image call only (``__call__``, ``device``, ``name``): video
    then takes its frame-at-a-time path, the one a painting took before 2026-12-07."""

    def __init__(self, stylizer):
        self.inner = stylizer
        self.device, self.name, self.dtype = stylizer.device, stylizer.name, stylizer.dtype

    def __call__(self, *args, **kwargs):
        return self.inner(*args, **kwargs)

    @property
    def last_tiles(self):
        return self.inner.last_tiles


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080", help="WxH of the test clip")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--style", default="starry_night",
                    help="a bundled style, or a painting file: the any-painting network (NetworkPaintingStylizer)")
    ap.add_argument("--one-at-a-time", action="store_true",
                    help="also run every row with the stylizer's one-frame path (__call__ per frame: what a painting "
                         "took before 2026-12-07)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--compile", action="store_true", help="torch.compile the style network")
    ap.add_argument("--batch-size", type=int, default=None, help="frames per forward pass (default: stylize_video's)")
    ap.add_argument("--presets", default="veryfast", help="libx264 presets to compare, comma-separated")
    ap.add_argument("--no-tune", dest="tune", action="store_false",
                    help="no cuDNN autotuning (stylize_video tunes clips of 300+ frames by itself)")
    ap.add_argument("--rgb", action="store_true",
                    help="also run end to end with RGB frames from FFmpeg (the default on CUDA moves yuv420p planes "
                         "and converts on the GPU)")
    ap.add_argument("--stable", action="store_true",
                    help="also run end to end (and with --cli, the whole command) in the stable mode")
    ap.add_argument("--cli", action="store_true",
                    help="also time the whole command `cvtools stylize CLIP` in a fresh process (cold: imports, "
                         "model, CUDA start, tuning)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", help="keep the clip and outputs in this folder")
    args = ap.parse_args()

    import av
    import torch

    from cvtools.style.stylize import Stylizer
    from cvtools.video.io import probe_video, read_frames, write_video
    from cvtools.video.process import _default_batch, stylize_frames_fn, stylize_video

    w, h = (int(v) for v in args.size.lower().split("x"))
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="video_speed_"))
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"clip_{w}x{h}.mp4"
    t0 = time.perf_counter()
    make_clip(clip, w, h, args.frames, args.fps)
    made = time.perf_counter() - t0
    info = probe_video(clip)
    n = info.frames

    if Path(args.style).is_file():
        from cvtools.style.painting import NetworkPaintingStylizer

        stylizer = NetworkPaintingStylizer([args.style], device=args.device, precision=args.precision,
                                           compile=args.compile)
    else:
        stylizer = Stylizer(args.style, device=args.device, precision=args.precision, compile=args.compile)
    device = stylizer.device
    batch = args.batch_size or _default_batch(stylizer, h, w)
    env = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__, "av": av.__version__, "python": platform.python_version(),
        "dtype": str(stylizer.dtype).replace("torch.", ""), "style": args.style, "size": f"{w}x{h}", "frames": n,
        "fps": float(info.fps), "batch": batch, "compile": args.compile,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    print(f"# {env}", flush=True)
    print(f"# test clip made in {made:.1f} s: {clip}", flush=True)
    rows = []

    def row(name, frames, seconds, **extra):
        r = {"row": name, "frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 1), **extra}
        rows.append(r)
        print(f"{name:<28} {frames:5d} frames  {seconds:7.2f} s  {frames / seconds:7.1f} frames/s"
              + (f"  {extra}" if extra else ""), flush=True)

    # decode alone
    t0 = time.perf_counter()
    frames = [f.rgb for f in read_frames(clip, info=info)]
    row("decode", len(frames), time.perf_counter() - t0)

    # compute alone (warm-up first: cuDNN autotuning and allocator), per variant; the first's frames are encoded below
    variants = [("", stylizer)] + ([(" one-at-a-time", OneAtATime(stylizer))] if args.one_at_a_time else [])
    torch.backends.cudnn.benchmark = device.type == "cuda" and args.tune
    stylized = None
    for tag, st in variants:
        compute = stylize_frames_fn(st)
        compute(frames[:batch])
        compute(frames[:batch])
        sync(device)
        t0 = time.perf_counter()
        done = []
        for k in range(0, len(frames), batch):
            done.extend(compute(frames[k:k + batch]))
        sync(device)
        row(f"compute{tag}", len(done), time.perf_counter() - t0)
        stylized = done if stylized is None else stylized
        del done
    del frames

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for preset in presets:
        out = folder / f"encoded_{preset}.mp4"
        t0 = time.perf_counter()
        write_video(out, stylized, fps=info.fps, preset=preset)
        row(f"encode {preset}", len(stylized), time.perf_counter() - t0, mbytes=round(out.stat().st_size / 1e6, 2))
    del stylized

    modes = [(preset, None, False) for preset in presets] + ([(presets[0], False, False)] if args.rgb else [])
    modes += [(presets[0], None, True)] if args.stable else []
    for (preset, yuv, stable), (tag0, st) in [(m, v) for v in variants for m in modes]:
        tag = " rgb" if yuv is False else " stable" if stable else ""
        tag += tag0
        out = folder / f"stylized_{preset}{tag.replace(' ', '_')}.mp4"
        if out.exists():
            out.unlink()
        stabilizer = None
        if stable:
            from cvtools.video.stability import stabilizer_for

            stabilizer = stabilizer_for(st)  # what --stable runs
        result = stylize_video(st, clip, out, batch_size=batch, preset=preset, tune=args.tune, yuv=yuv,
                               stable=stabilizer)
        check = probe_video(out)
        row(f"end to end {preset}{tag}", result.frames, result.seconds,
            phases={k: round(v, 2) for k, v in result.phases.items()}, audio=result.audio,
            out=f"{check.width}x{check.height} {float(check.fps):g} fps")
    for stable in ([False, True] if args.stable else [False]) if args.cli else []:
        import subprocess

        out = folder / f"cli_out{'_stable' if stable else ''}.mp4"
        if out.exists():
            out.unlink()
        cmd = [sys.executable, "-m", "cvtools", "stylize", str(clip), "--style", args.style, "--device", args.device,
               "-o", str(out), "-q"] + (["--tune"] if args.tune and device.type == "cuda" else [])
        cmd += ["--stable"] if stable else []
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode == 0:
            row(f"cli whole command (cold){' stable' if stable else ''}", n, seconds, cmd=" ".join(cmd[1:]))
        else:
            print(f"cli failed ({proc.returncode}): {proc.stderr.strip()[-500:]}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "rows": rows}, indent=2))
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
