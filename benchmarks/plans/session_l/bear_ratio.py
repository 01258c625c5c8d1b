"""The polar bear on snow (BSDS test_100007, one of the 20 held-out photos): the bear's body against the snow
beside it, in luminance, for each record given (NAME or path to a record JSON), and a 1x crop row per record.

    python benchmarks/plans/session_l/bear_ratio.py SHARED OUT.png mona path/to/mona.json ..."""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402

BEAR, SNOW = (0.26, 0.47, 0.44, 0.57), (0.26, 0.72, 0.44, 0.80)  # fractions of the width and height
CROP = (0.1, 0.3, 0.6, 0.85)


def mean_y(x, box):
    h, w = x.shape[-2:]
    y = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    return float(y[round(box[1] * h):round(box[3] * h), round(box[0] * w):round(box[2] * w)].mean())


def main():
    from PIL import Image
    from torchvision.transforms.functional import to_pil_image

    torch.set_grad_enabled(False)
    shared, out, records = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    photo = pil_to_tensor(load_image(shared / "data/photos/research/bsds500_test_100007.jpg").rgb)
    h, w = photo.shape[-2:]
    box = tuple(round(f * s) for f, s in zip(CROP, (w, h, w, h)))
    tiles = [("photo", photo)]
    for r in records:
        tiles.append((r, Stylizer(r, device="cpu", precision="fp32")(photo, tile=None).clamp(0, 1)))
    for label, x in tiles:
        b, s = mean_y(x, BEAR), mean_y(x, SNOW)
        print(f"{label}: bear {b:.3f} snow {s:.3f} ratio {b / s:.2f}")
    crops = [to_pil_image(x).crop(box) for _, x in tiles]
    sheet = Image.new("RGB", (crops[0].width * len(crops), crops[0].height))
    for i, c in enumerate(crops):
        sheet.paste(c, (i * c.width, 0))
    sheet.save(out)


main()
