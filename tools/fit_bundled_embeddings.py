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
    ap.add_argument("--teacher", action="store_true",
                    help="fit to the bundled trained network's output on the same crops (its features' styles, "
                         "per crop) instead of to the painting: the embedding learns what the trained network paints")
    ap.add_argument("--pixel-weight", type=float, default=0.0,
                    help="with --teacher: also this × the mean |output - teacher output| (colour and light)")
    ap.add_argument("--teacher-loss", choices=["swag", "gram", "features"], default="swag",
                    help="with --teacher: the training's style distance to the teacher's output (swag), the same "
                         "with plain Grams (gram), or its features themselves, position by position (features)")
    ap.add_argument("--space", choices=["embedding", "params"], default="embedding",
                    help="fit the embedding (what blends and the ONNX graphs take) or every norm's gamma and beta "
                         "(a probe: the record stores embeddings)")
    ap.add_argument("--device", default="cpu",
                    help="where to fit (cpu, cuda): fp32 either way; a GPU takes seconds a painting, this "
                         "2-core CPU minutes")
    args = ap.parse_args(argv)
    if args.teacher and args.device != "cpu":
        ap.error("--teacher runs on the CPU only")
    if args.write and args.space == "params":
        ap.error("--write stores embeddings: the record has no place for --space params")

    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.ops import resize_long_side
    from cvtools.style.arbitrary import BUNDLED_RECORD, ArbitraryStylizer, bundled_record
    from cvtools.style.arbitrary_fit import FIT_CROP, StyleFitter, _crop_pool
    from cvtools.style.records import bundled_records, load_painting

    torch.manual_seed(0)
    stylizer = ArbitraryStylizer(device=args.device, precision="fp32")
    fitter = StyleFitter(stylizer)
    net = stylizer.net
    net.requires_grad_(False)
    free = sorted((Path(args.shared) / "data" / "photos" / "free").glob("*.jpg"))[:args.photos]
    photos = [pil_to_tensor(resize_long_side(load_image(p).rgb, 768, enlarge=False)) for p in free]
    pool = _crop_pool(photos, FIT_CROP, per_photo=8).to(stylizer.device)
    sizes = {r.name: int(r.recipe.get("style_size", 512)) for r in bundled_records()}
    names = args.only.split(",") if args.only else BUNDLED
    gen = torch.Generator().manual_seed(0)
    record = bundled_record()
    encodings = record.get("style_encodings") or record["style_embeddings"]  # fitted from the encodings

    def bundled_style_encoding(name):
        return torch.tensor(encodings[name], dtype=torch.float32)

    def teacher_outputs(name, crops):
        """The bundled trained network's pictures of every crop (uint8, as the pool)."""
        from cvtools.style.stylize import Stylizer

        trained = Stylizer(name, device="cpu", precision="fp32")
        with torch.no_grad():
            ys = [trained(c.float().div(255), tile=None).clamp(0, 1) for c in crops]
        return (torch.stack(ys) * 255).round().to(torch.uint8)

    if args.teacher_loss == "gram":
        from cvtools.style.arbitrary_loss import ArbitraryStyleDistance

        fitter.distance = ArbitraryStyleDistance("gram", fitter.distance.stats_weight)

    def feature_distance(y, target):
        """Relative squared distance of the output's features to the teacher output's, position by
        position, averaged over every loss network's style layers."""
        nets = [(fitter.backbone, fitter.style_layers)] + fitter.extra
        total, count = 0.0, 0
        for (bb, layers), t in zip(nets, target):
            f = bb.features(y, layers)
            for k in layers:
                total = total + (f[k] - t[k]).pow(2).mean() / t[k].pow(2).mean().clamp_min(1e-12)
                count += 1
        return total / count

    out = {}
    for name in names:
        t0 = time.perf_counter()
        painting = pil_to_tensor(load_painting(Path(args.shared) / "styles" / f"{name}.jpg"))
        target = fitter._painting_features(painting, sizes[name])
        teacher = teacher_outputs(name, pool) if args.teacher else None
        start = bundled_style_encoding(name).to(stylizer.device)
        if args.space == "params":
            with torch.no_grad():
                start = net.style_params(start[None])[0]
        e = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([e], lr=args.lr)
        first = last = None
        for step in range(args.steps):
            pick = torch.randint(0, pool.shape[0], (args.batch,), generator=gen)
            x = pool[pick].float().div_(255)
            params = (e[None] if args.space == "params" else net.style_params(e[None])).expand(x.shape[0], -1)
            y = net.transformer(x, params)
            if teacher is None:
                loss = fitter._loss(x, y, target)
            else:
                t = teacher[pick].float().div_(255)
                with torch.no_grad():
                    feats = [fitter.backbone.features(t, fitter.style_layers)] + \
                        [bb.features(t, layers) for bb, layers in fitter.extra]
                if args.teacher_loss == "features":
                    loss = feature_distance(y, feats) + args.pixel_weight * (y - t).abs().mean()
                else:
                    loss = fitter._loss(x, y, feats) + args.pixel_weight * (y - t).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last = float(loss.detach())
            first = last if first is None else first
        out[name] = [round(float(v), 6) for v in e.detach().cpu()]
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
