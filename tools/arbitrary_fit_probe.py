#!/usr/bin/env python3
"""Probe (issue 28): fit the any-painting network's style to one painting for a few steps, then
stylize at network speed, and judge on QUALITY's Lite2 yardstick against the one-pass network and
the bundled trained network (Dumoulin et al. 2017: a conditional-instance-norm network learns a
new style from its norm parameters alone, in far fewer steps than a whole network).

What is fitted (``--what``): ``embedding`` (the painting's 1-D embedding: blends and strength
work on it unchanged) or ``params`` (every conditional norm's scale and shift). The loss is the
network's own training loss (``ArbitraryTrainer``: swag Grams + channel statistics through Lite0
and Lite1, content, total variation) against the whole painting at ``--painting-long-side``,
on random 256-px crops of the freely licensed photos (training photos, never the judged ones).

    flock /tmp/cpu.lock python tools/arbitrary_fit_probe.py --paintings starry_night monet_grand_canal \\
        --steps 100 --reference /tmp/arbqL512.json --json /tmp/fit.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def trainer_for(shared: Path, weights=None, device: str = "cpu", extra: bool = True):
    """An ArbitraryTrainer on the CPU holding the shipped network and the shipped loss."""
    from cvtools.style.arbitrary import bundled_record, bundled_weights
    from cvtools.style.train_arbitrary import ArbitraryTrainConfig, ArbitraryTrainer

    record = bundled_record()
    recipe = {k: v for k, v in record["recipe"].items() if k in ArbitraryTrainConfig.__dataclass_fields__}
    recipe.update(photos=str(shared / "data" / "photos" / "free"), paintings=str(shared / "data" / "paintings"),
                  device=device, precision="fp32", compile=False, init_weights=str(weights or bundled_weights()[0]),
                  init_partial=False, architecture=record["architecture"])
    if not extra:
        recipe["extra_backbones"] = {}
    return ArbitraryTrainer(ArbitraryTrainConfig(**recipe))


def photo_crops(shared: Path, count: int, size: int, seed: int):
    """``count`` random ``size``-px crops of the free photos (uint8, N×3×S×S), seeded."""
    import numpy as np
    import torch

    from cvtools.io.decode import load_image, pil_to_tensor
    files = sorted((shared / "data" / "photos" / "free").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(files), size=count, replace=count > len(files)):
        rgb = load_image(files[i]).rgb
        scale = 1.25 * size / min(rgb.size)  # the short side a little over the crop
        img = pil_to_tensor(rgb.resize((max(size, round(rgb.width * scale)), max(size, round(rgb.height * scale)))))
        h, w = img.shape[-2:]
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        out.append(img[:, y:y + size, x:x + size])
    return (torch.stack(out) * 255).round().to(torch.uint8)


def fit(trainer, painting, crops, what: str, steps: int, batch: int, lr: float, seed: int = 0, snapshots=()):
    """The fitted style of ``painting`` (3×H×W): (embedding or None, params), the loss log, and
    {step: params} at each of ``snapshots``."""
    import torch

    net = trainer.net
    with torch.no_grad():
        pf = trainer.backbone.features(painting[None], trainer.painting_layers)
        embedding = net.encoder(pf)
        extra_pf = [bb.features(painting[None], layers) for bb, layers in trainer.extra]
    var = (embedding if what == "embedding" else net.style_params(embedding)).detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([var], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    log, snaps = [], {}
    for step in range(steps):
        if step in snapshots:
            with torch.no_grad():
                snaps[step] = (net.style_params(var) if what == "embedding" else var).detach().float().cpu().clone()
        idx = torch.randint(0, crops.shape[0], (batch,), generator=gen)
        x = crops[idx].float() / 255
        params = net.style_params(var) if what == "embedding" else var
        y = trainer.net.transformer(x, params.expand(batch, -1))
        loss, parts = style_loss(trainer, x, y, pf, extra_pf)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.append({k: round(float(v), 5) for k, v in parts.items()})
    with torch.no_grad():
        return (var.detach() if what == "embedding" else None), \
            (net.style_params(var) if what == "embedding" else var).detach(), log, snaps


def style_loss(trainer, x, y, pf, extra_pf):
    """The trainer's loss (as ``ArbitraryTrainer._loss``) for output ``y`` of photos ``x``
    against one painting's features ``pf`` (Lite0) and ``extra_pf`` (the further networks)."""
    import torch

    from cvtools.style.losses import content_distance, total_variation

    c, n = trainer.config, x.shape[0]
    with torch.no_grad():
        xf = trainer.backbone.features(x, [c.content_layer])
    feats = trainer.backbone.features(y, trainer.output_layers)
    expand = lambda f: {k: v.expand(n, *v.shape[1:]) for k, v in f.items()}  # noqa: E731
    style = trainer._layers_distance(feats, expand(pf), list(c.style_layers))
    for (bb, layers), p in zip(trainer.extra, extra_pf):
        style = style + trainer._layers_distance(bb.features(y, layers), expand(p), layers)
    style = style.mean() / (1 + len(trainer.extra))
    content = content_distance(feats[c.content_layer], xf[c.content_layer]).mean()
    tv = total_variation(y)
    total = c.style_weight * style + c.content_weight * content + c.tv_weight * tv
    return total, {"total": total.detach(), "style": style.detach(), "content": content.detach()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--paintings", nargs="+", required=True)
    ap.add_argument("--what", nargs="+", default=["embedding", "params"], choices=["embedding", "params"])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, nargs="+", default=[0.05])
    ap.add_argument("--crops", type=int, default=64)
    ap.add_argument("--snapshots", type=int, nargs="*", default=[], help="also keep the params at these steps")
    ap.add_argument("--painting-long-side", type=int, default=512)
    ap.add_argument("--reference", help="an arbitrary_quality.py JSON: its trained/arbitrary rows as the baseline")
    ap.add_argument("--out", default="/tmp/arbfit")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lite0-only", action="store_true", help="the loss through Lite0 alone (no Lite1)")
    ap.add_argument("--save-params", help="fit only: write each fitted style's params here (.pt), no judging")
    ap.add_argument("--load-params", help="judge only: the params a --save-params run wrote")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import torch

    if args.device == "cpu":
        torch.set_num_threads(2)
    shared = Path(args.shared)
    fitted = fit_all(args, shared) if not args.load_params else torch.load(Path(args.load_params) / "fitted.pt")
    if args.save_params:
        Path(args.save_params).mkdir(parents=True, exist_ok=True)
        torch.save(fitted, Path(args.save_params) / "fitted.pt")
        return 0
    results = judge_all(args, shared, fitted)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def fit_all(args, shared: Path) -> dict:
    """{(painting, what, lr): {"params": 1×P CPU tensor, "embedding", "seconds", "log"}}."""
    import torch
    from arbitrary_quality import painting_file

    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.stylize import resize_long_side

    trainer = trainer_for(shared, device=args.device, extra=not args.lite0_only)
    crops = photo_crops(shared, args.crops, 256, seed=1).to(trainer.device)
    fitted = {}
    for name in args.paintings:
        art = load_image(painting_file(shared, name)).rgb
        painting = pil_to_tensor(resize_long_side(art, args.painting_long_side)).to(trainer.device)
        for what in args.what:
            for lr in args.lr:
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                emb, params, log, snaps = fit(trainer, painting, crops, what, args.steps, args.batch, lr,
                                              snapshots=set(args.snapshots))
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                sec = time.perf_counter() - t0
                fitted[(name, what, lr, args.steps)] = {"params": params.float().cpu(), "seconds": sec, "log": log,
                                                        "embedding": None if emb is None else emb.float().cpu()}
                for k, p in snaps.items():  # the same run stopped earlier (its seconds: pro rata)
                    fitted[(name, what, lr, k)] = {"params": p, "seconds": sec * k / args.steps, "log": log[:k],
                                                   "embedding": None}
                print(json.dumps({"painting": name, "what": what, "lr": lr, "seconds": round(sec, 2),
                                  "first": log[0], "last": log[-1]}), flush=True)
    return fitted


def judge_all(args, shared: Path, fitted: dict) -> list:
    """Each fitted style on the judged photos, on QUALITY's Lite2 yardstick (CPU)."""
    import torch
    from arbitrary_quality import painting_file, pick_photos
    from style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS

    from cvtools.backbones import load_backbone
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import resize_long_side

    arb = ArbitraryStylizer(device="cpu")
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    records = {r.name: r for r in bundled_records()}
    photos = pick_photos(shared)
    images = {stem: pil_to_tensor(load_image(p).rgb) for stem, p, _ in photos}
    ref = json.loads(Path(args.reference).read_text()) if args.reference else None
    results, targets = [], {}
    for (name, what, lr, steps), fit_ in fitted.items():
        if name not in targets:
            rec = records.get(name)
            side = int(rec.recipe.get("style_size", 512)) if rec else 512
            art = load_image(painting_file(shared, name)).rgb
            targets[name] = style_target(judge, pil_to_tensor(resize_long_side(art, side)), INDEPENDENT_LAYERS)
        row = {"painting": name, "what": what, "lr": lr, "fit_seconds": round(fit_["seconds"], 2),
               "loss_first": (fit_["log"] or [None])[0], "loss_last": (fit_["log"] or [None])[-1],
               "steps": steps, "distance": {}}
        with torch.inference_mode():
            for stem, _, _ in photos:
                x = images[stem][None].contiguous(memory_format=arb.memory_format)
                y = arb.transformer(x, fit_["params"].to(arb.dtype))[0].float().clamp(0, 1)
                path = Path(args.out) / f"{what}_{lr}_{steps}" / f"{stem}__{name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                save_image(path, y)
                feats = judge.features(pil_to_tensor(load_image(path).rgb)[None], INDEPENDENT_LAYERS)
                row["distance"][stem] = float(torch.stack(list(gram_distances(feats, targets[name]).values())).mean())
        summarise(row, ref)
        results.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("distance", "loss_first")}), flush=True)
    return results


def summarise(row, ref):
    """The mean fitted distance, and against the reference's network and trained rows."""
    d = row["distance"]
    row["mean"] = round(sum(d.values()) / len(d), 4)
    if not ref:
        return
    for method in ("arbitrary", "trained", "optimisation"):
        base = {r["photo"]: r["style"] for r in ref["rows"] if r["method"] == method and r["painting"] == row["painting"]}
        common = [s for s in d if s in base]
        if common:
            row[f"vs_{method}"] = round(sum(d[s] for s in common) / sum(base[s] for s in common), 3)


if __name__ == "__main__":
    sys.exit(main())
