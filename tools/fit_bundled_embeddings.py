#!/usr/bin/env python3
"""Fit the bundled styles' stored embeddings (what blends and style-space strength use for a
bundled name) to their paintings, on the freely licensed photos (issue 28).

    python tools/fit_bundled_embeddings.py --shared ../shared --out /tmp/fitted_embeddings.json [--write]

Each bundled painting's embedding (the record's, its encoding) is optimised *in embedding space*
(the 400 numbers, through the network's linear heads: so the result still feeds the ONNX graphs,
blends and ``--strength`` as an encoding does) against the network's own training loss
(:class:`cvtools.style.arbitrary_fit.StyleFitter`'s: Lite0 + Lite1 SWAG Grams, content, TV), on
crops of --photos of shared/data/photos/free (the only photos shipped weights may be fitted on),
the painting at its bundled network's style size. Judge before writing:
``tools/arbitrary_quality.py --bundled-stored-embeddings FILE``. ``--write`` puts them in the record.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUNDLED = ["composition_vii", "grande_jatte", "great_wave", "mona", "scream", "starry_night"]
FITTED_NOTE = (
    "the bundled styles' embeddings that blends and style-space strength use for a bundled name: each painting's "
    "encoding (style_encodings: shared/styles' file, CPU fp32, its long side at its bundled network's style size, "
    "grande_jatte 1024 px, the others 512) fitted in embedding space to the network's training loss on crops of "
    "freely licensed photos (style_embeddings_fit; tools/fit_bundled_embeddings.py), so the paintings need not ship")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", required=True, help="write {name: embedding} here (JSON)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.02, help="Adam on the embedding (the parameter fit's FIT_LR)")
    ap.add_argument("--photos", type=int, default=16, help="how many of the free photos (sorted) to crop from")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--only", help="comma-separated names")
    ap.add_argument("--write", action="store_true", help="also store them in cvtools/style/bundled/arbitrary.json")
    args = ap.parse_args(argv)

    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.ops import resize_long_side
    from cvtools.style.arbitrary import BUNDLED_RECORD, ArbitraryStylizer, bundled_record
    from cvtools.style.arbitrary_fit import FIT_CROP, StyleFitter, _crop_pool
    from cvtools.style.records import bundled_records, load_painting

    torch.manual_seed(0)
    stylizer = ArbitraryStylizer(device="cpu")
    fitter = StyleFitter(stylizer)
    net = stylizer.net
    net.requires_grad_(False)
    free = sorted((Path(args.shared) / "data" / "photos" / "free").glob("*.jpg"))[:args.photos]
    photos = [pil_to_tensor(resize_long_side(load_image(p).rgb, 768, enlarge=False)) for p in free]
    pool = _crop_pool(photos, FIT_CROP, per_photo=8)
    sizes = {r.name: int(r.recipe.get("style_size", 512)) for r in bundled_records()}
    names = args.only.split(",") if args.only else BUNDLED
    gen = torch.Generator().manual_seed(0)
    record = bundled_record()
    encodings = record.get("style_encodings") or record["style_embeddings"]  # fitted from the encodings

    def bundled_style_encoding(name):
        return torch.tensor(encodings[name], dtype=torch.float32)

    out = {}
    for name in names:
        t0 = time.perf_counter()
        painting = pil_to_tensor(load_painting(Path(args.shared) / "styles" / f"{name}.jpg"))
        target = fitter._painting_features(painting, sizes[name])
        start = bundled_style_encoding(name)
        e = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([e], lr=args.lr)
        first = last = None
        for step in range(args.steps):
            x = pool[torch.randint(0, pool.shape[0], (args.batch,), generator=gen)].float().div_(255)
            params = net.style_params(e[None]).expand(x.shape[0], -1)
            loss = fitter._loss(x, net.transformer(x, params), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = float(loss.detach())
            first = last if first is None else first
        out[name] = [round(float(v), 6) for v in e.detach()]
        moved = float((e.detach() - start).norm() / start.norm())
        print(f"{name}: loss {first:.3f} -> {last:.3f} (single batches), embedding moved {moved:.2f} of its norm, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    Path(args.out).write_text(json.dumps(out) + "\n")
    if args.write:
        record = json.loads(BUNDLED_RECORD.read_text())
        # the encodings stay beside the fitted embeddings: they are what the paintings' files give
        record.setdefault("style_encodings", dict(record["style_embeddings"]))
        record["style_embeddings"].update(out)
        record["style_embeddings_note"] = FITTED_NOTE
        record["style_embeddings_fit"] = {"names": sorted(out), "steps": args.steps, "lr": args.lr,
                                          "batch": args.batch, "crop": FIT_CROP, "photo_long_side": 768,
                                          "photos": [p.name for p in free], "date": time.strftime("%Y-%m-%d")}
        BUNDLED_RECORD.write_text(json.dumps(record, indent=1) + "\n")
        print(f"stored {len(out)} fitted embeddings in {BUNDLED_RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
