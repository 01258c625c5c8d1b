"""docs/images/own_model.jpg: `cvtools visualize` on networks a user brings, through the CLI.

Top row: the embedded EfficientNet-Lite0 exported as a torch.export program (.pt2), as a user's
own trained network would arrive (real ImageNet weights, so the maps mean something), with its
normalisation given by --mean/--std and its class names by --classes. Bottom row: a torchvision
vit_b_16 state dict with RANDOM weights (no ViT weights can be downloaded here): it shows the
mechanics (tokens laid on the patch grid, attention rollout), not what a trained ViT sees.

    python3 tools/own_model_figure.py -o docs/images/own_model.jpg
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "images" / "own_model.jpg"))
    ap.add_argument("--photo", default=str(ROOT / "samples" / "chelsea.jpg"))
    args = ap.parse_args(argv)

    import torch
    import torchvision
    from PIL import Image

    from cvtools.backbones import load_backbone

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        lite0 = load_backbone("efficientnet_lite0", device="cpu", precision="fp32", fuse=False, channels_last=False)
        program = torch.export.export(lite0.model.eval(), (torch.rand(2, 3, 224, 224),),
                                      dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}})
        torch.export.save(program, d / "lite0.pt2")
        torch.manual_seed(0)
        vit = torchvision.models.vit_b_16(weights=None)
        torch.nn.init.normal_(vit.heads.head.weight, std=0.02)  # torchvision's zero head explains nothing
        torch.save(vit.state_dict(), d / "vit_b_16_random.pth")
        classes = ROOT / "cvtools" / "data" / "imagenet_classes.txt"
        rows = [
            ["visualize", "gradcam,layercam,smoothgrad", args.photo, "--model", d / "lite0.pt2",
             "--mean", "0.49804,0.49804,0.49804", "--std", "0.50196,0.50196,0.50196", "--classes", classes,
             "--samples", "16", "-o", d / "top.jpg", "-q"],
            ["visualize", "gradcam,attention-rollout,saliency", args.photo, "--model", d / "vit_b_16_random.pth",
             "--arch", "vit_b_16", "--classes", classes, "-o", d / "bottom.jpg", "-q"],
        ]
        for cmd in rows:
            subprocess.run([sys.executable, "-m", "cvtools", *map(str, cmd)], check=True)
        top, bottom = Image.open(d / "top.jpg"), Image.open(d / "bottom.jpg")
        width = max(top.width, bottom.width)
        sheet = Image.new("RGB", (width, top.height + bottom.height), "white")
        sheet.paste(top, (0, 0))
        sheet.paste(bottom, (0, top.height))
        sheet.save(args.output, quality=88, optimize=True)
    print(args.output)


if __name__ == "__main__":
    main()
