"""2x face crops of the people set: the photo, then each record (bundled NAME or a record JSON), one row per face.

    python benchmarks/plans/session_o/face_crops.py SHARED OUT.png NAME REC ... [--faces train_260081:0 ...]"""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from people_quality import PEOPLE  # noqa: E402

from cvtools.io.decode import load_image, pil_to_tensor  # noqa: E402
from cvtools.style.stylize import Stylizer  # noqa: E402

FACES = ["train_260081:0", "test_368037:2", "test_368037:0", "train_189003:1", "test_246009:0", "test_105027:0"]


def main():
    from PIL import Image
    from torchvision.transforms.functional import to_pil_image

    torch.set_grad_enabled(False)
    shared, out, records = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    nets = [Stylizer(r, device="cpu", precision="fp32") for r in records]
    rows = []
    for face in FACES:
        stem, idx = face.split(":")
        photo_path = next((shared / "data/photos/research").glob(f"*{stem}.jpg"))
        photo = pil_to_tensor(load_image(photo_path).rgb)
        h, w = photo.shape[-2:]
        x0, y0, x1, y1 = PEOPLE[stem][1][int(idx)]
        box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
        tiles = [photo] + [net(photo, tile=None).clamp(0, 1) for net in nets]
        crops = [to_pil_image(t[0] if t.dim() == 4 else t).crop(box) for t in tiles]
        cw, ch = crops[0].size
        crops = [c.resize((2 * cw, 2 * ch), Image.NEAREST) for c in crops]
        row = Image.new("RGB", (sum(c.width for c in crops), crops[0].height), "white")
        for i, c in enumerate(crops):
            row.paste(c, (i * c.width, 0))
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.save(out)


if __name__ == "__main__":
    main()
