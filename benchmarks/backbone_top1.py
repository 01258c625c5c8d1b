"""Top-1 on the 50 labelled ImageNet images for every backbone fast path (the speed-ups in
`cvtools bench --only backbone` must not cost accuracy).

    python3 benchmarks/backbone_top1.py [--device auto]      # needs $CVTOOLS_SHARED or ../shared
"""

import argparse
import os
from pathlib import Path

import torch

from cvtools.backbones import load_backbone
from cvtools.backbones.base import eval_crop
from cvtools.io.decode import load_image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    shared = Path(os.environ.get("CVTOOLS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    files = sorted((shared / "data" / "imagenet50").glob("*.jpg"))
    labels = torch.tensor([int(f.name.split("_")[0]) for f in files])
    probe = load_backbone("efficientnet_lite0", device="cpu")
    x = torch.stack([eval_crop(load_image(f).rgb, probe.preprocessing) for f in files])
    gpu = torch.device(load_backbone("efficientnet_lite0", device=args.device).device).type != "cpu"
    variants = [("unfused fp32 eager", dict(fuse=False, precision="fp32", channels_last=False)),
                ("fused fp32", dict(precision="fp32", channels_last=False))]
    if gpu:
        variants += [("fused fp16 channels_last", dict(precision="fp16", channels_last=True)),
                     ("fused fp16 channels_last compile", dict(precision="fp16", channels_last=True, compile=True))]
    else:
        variants += [("fused fp32 channels_last", dict(precision="fp32", channels_last=True)),
                     ("fused bf16 channels_last", dict(precision="bf16", channels_last=True))]
    for desc, kw in variants:
        bb = load_backbone("efficientnet_lite0", device=args.device, **kw)
        with torch.inference_mode():
            pred = bb(x).argmax(1).cpu()
        print(f"{desc:<36} top-1 {int((pred == labels).sum())}/{len(files)}")


if __name__ == "__main__":
    main()
