"""Issue 31 item 3: nvJPEG (torchvision.io on CUDA) against Pillow, on the files the router sends to it.

    python benchmarks/folder/gpu_codec_check.py [--src /tmp/f1080] [--n 32] [--json FILE]

For the JPEGs in ``--src`` (default: /tmp/f1080, which profile_folder.py makes; else the free
photos of $CVTOOLS_SHARED re-encoded at 1920x1080, quality 92, plus the same photos at 4:4:4 and
4:2:2, progressive, with an ICC profile and with EXIF orientation 6, to see the routing):

- routing: how many go to the GPU and why the others do not (cvtools.io.gpu_jpeg.route_jpeg);
- decode: per routed file, nvJPEG's pixels against what stylize's host path decodes
  (cvtools.io.decode.load_image): the largest absolute difference per channel, the mean, and the
  share of values off by more than 1 and by more than 4 levels;
- encode: the same 8-bit images encoded by Pillow (quality 95, as save_image) and by nvJPEG
  (cvtools.io.gpu_jpeg.encode_on_device), both decoded again by Pillow: PSNR against the image
  encoded, file sizes, chroma subsampling;
- speed: milliseconds per image, medians of 3 passes after a warm-up: Pillow decode (one
  thread, load_image), nvJPEG decode (one batched call of 8), Pillow encode (save to memory),
  nvJPEG encode (one call of 8, bytes back on the host).

Prints one JSON object (and writes it to ``--json``). Expect decode differences of a few levels
at most (the inverse DCT and the chroma upsampling are not libjpeg's); more means the routing
must stay off by default.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _make_inputs(d: Path, n: int):
    """JPEGs to check: /tmp/f1080's if there, else made from the shared free photos."""
    d.mkdir(parents=True, exist_ok=True)
    src = Path(os.environ.get("CVTOOLS_SHARED", "shared")) / "data/photos/free"
    photos = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n] if src.is_dir() else []
    if not photos:
        rng = np.random.default_rng(0)
        photos = [Image.fromarray(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)) for _ in range(4)]
    for i, f in enumerate(photos):
        im = f if isinstance(f, Image.Image) else Image.open(f).convert("RGB").resize((1920, 1080), Image.BICUBIC)
        im.save(d / f"p{i:02d}.jpg", quality=92)
    return sorted(d.glob("*.jpg"))


def _variants(first: Path, d: Path):
    """The first photo as files the router must keep on the host, and the sampling it routes."""
    from cvtools.io.decode import srgb_icc

    d.mkdir(parents=True, exist_ok=True)
    im = Image.open(first).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    cases = {"v444.jpg": dict(subsampling=0), "v422.jpg": dict(subsampling=1), "vprog.jpg": dict(progressive=True),
             "vicc.jpg": dict(icc_profile=srgb_icc()), "vturned.jpg": dict(exif=exif.tobytes())}
    out = []
    for name, kw in cases.items():
        im.save(d / name, quality=92, **kw)
        out.append(d / name)
    return out


def _median_ms(fn, per, passes=3):
    fn()  # warm-up
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) / per * 1e3, 3)


def _psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return round(10 * np.log10(255.0 ** 2 / mse), 2) if mse else float("inf")


def _decode_row(path, data, device):
    from cvtools.io.decode import load_image
    from cvtools.io.gpu_jpeg import decode_on_device

    host = np.asarray(load_image(path).rgb).astype(np.int16)
    gpu = decode_on_device([data], device)[0].permute(1, 2, 0).cpu().numpy().astype(np.int16)
    if gpu.shape != host.shape:
        return {"file": path.name, "shape_gpu": list(gpu.shape), "shape_host": list(host.shape)}
    d = np.abs(gpu - host)
    return {"file": path.name, "max_per_channel": [int(d[..., c].max()) for c in range(3)],
            "mean": round(float(d.mean()), 4), "share_over_1": round(float((d > 1).mean()), 6),
            "share_over_4": round(float((d > 4).mean()), 6)}


def _sampling(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        layers = getattr(im, "layer", None)
        return ",".join(f"{h}x{v}" for _, h, v, _ in layers) if layers else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/tmp/f1080")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--json")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of this script (torchvision's CPU codec)")
    args = ap.parse_args()
    import torch

    from cvtools.io.decode import load_image
    from cvtools.io.gpu_jpeg import available, decode_on_device, encode_on_device, route_jpeg

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    result = {"torch": torch.__version__, "device": str(device)}
    try:
        import torchvision

        result["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    if cuda and (not torch.cuda.is_available() or not available(device)):
        result["error"] = "no CUDA device or no torchvision: nothing to check"
        print(json.dumps(result))
        return
    if cuda:
        result["gpu"] = torch.cuda.get_device_name()

    def sync():
        if cuda:
            torch.cuda.synchronize(device)
    src = Path(args.src)
    files = sorted(src.glob("*.jpg"))[:args.n] if src.is_dir() else []
    if not files:
        files = _make_inputs(Path("/tmp/gpu_codec_check"), args.n)
    extra = _variants(files[0], Path("/tmp/gpu_codec_check_variants"))
    routes = {p.name: route_jpeg(p.read_bytes()) for p in files + extra}
    result["routing"] = {name: ("gpu" if r.device else "host") + f": {r.reason}" for name, r in routes.items()}
    routed = [p for p in files + extra if routes[p.name].device]
    datas = {p: p.read_bytes() for p in routed}
    result["decode"] = [_decode_row(p, datas[p], device) for p in routed]
    rows = [r for r in result["decode"] if "max_per_channel" in r]
    if rows:
        result["decode_worst"] = {"max": max(max(r["max_per_channel"]) for r in rows),
                                  "mean": max(r["mean"] for r in rows),
                                  "share_over_1": max(r["share_over_1"] for r in rows)}
    batch = [p for p in routed if p in files][:8] or routed[:8]
    k = len(batch)
    result["ms_per_image"] = {
        "pil_decode": _median_ms(lambda: [load_image(p).rgb for p in batch], k),
        "nvjpeg_decode_batched": _median_ms(lambda: (decode_on_device([datas[p] for p in batch], device), sync()), k),
    }
    images = [np.asarray(load_image(p).rgb) for p in batch]
    on_gpu = [torch.from_numpy(a).permute(2, 0, 1).contiguous().to(device) for a in images]

    def pil_encode():
        out = []
        for a in images:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "JPEG", quality=95)
            out.append(buf.getvalue())
        return out

    result["ms_per_image"]["pil_encode_q95"] = _median_ms(pil_encode, k)
    result["ms_per_image"]["nvjpeg_encode_q95"] = _median_ms(lambda: encode_on_device(on_gpu, 95), k)
    by_pil, by_gpu = pil_encode(), encode_on_device(on_gpu, 95)
    result["encode"] = [{"psnr_pil": _psnr(np.asarray(Image.open(io.BytesIO(a))), im),
                         "psnr_nvjpeg": _psnr(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")), im),
                         "bytes_pil": len(a), "bytes_nvjpeg": len(b), "sampling_pil": _sampling(a),
                         "sampling_nvjpeg": _sampling(b), "nvjpeg_routes_to": route_jpeg(b).reason}
                        for a, b, im in zip(by_pil, by_gpu, images)]
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
