#!/usr/bin/env python3
"""Train cvtools' bundled styles with cvtools' own training API, on one GPU, in one go.

    python benchmarks/train_bundled_styles.py --shared ../shared --out runs/bundled \\
        --budget-seconds 75 [--only mona,scream] [--grid style_weight=10,30] [--tiny]

Each style trains for a fixed time budget: a short probe measures the images/s first, and the
step count follows from it (the count goes into the record, so a rerun with ``--steps`` repeats
it exactly). Content photos: ONLY ``shared/data/photos/free`` (freely licensed). Output per
style: NAME.safetensors, NAME.json, a preview; plus ``bundle.tar`` with all of them (the GPU
machine returns few files) and ``log.txt``. ``--tiny`` is a CPU smoke run of the whole script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCES = "shared/styles/SOURCES.md (public-domain painting; faithful 2-D reproduction: Bridgeman v. Corel, " \
          "EU Directive 2019/790 Art. 14; re-encoded with Pillow, longest side <= 1024 px)"

# Painting facts and provenance copied from shared/styles/SOURCES.md; recipe overrides per style.
STYLES = {
    "mona": dict(
        file="mona.jpg", title="Mona Lisa (La Gioconda)", artist="Leonardo da Vinci", year="c. 1503–1519",
        provenance=dict(museum="Louvre", artist_died=1519, source="disney-snoopy/SmArtTorch @ "
                        "6cbb6ce3027c4d5dcdc4e5ce2f1793d7cccaaed9 : images/mona_lisa.jpg", original_px="686x960 (kept)",
                        public_domain="artist died 1519: public domain worldwide"),
        recipe=dict(style_weight=20.0, style_size=512)),
    "starry_night": dict(
        file="starry_night.jpg", title="The Starry Night", artist="Vincent van Gogh", year="1889",
        provenance=dict(museum="MoMA (top/bottom cropped to 1.6:1 in the source)", artist_died=1890,
                        source="jcjohnson/fast-neural-style @ 813c83441953ead2adb3f65f4cc2d5599d735fa7 : "
                               "images/styles/starry_night.jpg", original_px="1024x640 (kept)",
                        public_domain="artist died 1890: public domain worldwide"),
        recipe=dict(style_weight=10.0, style_size=512)),
    "great_wave": dict(
        file="great_wave.jpg", title="The Great Wave off Kanagawa (Kanagawa-oki nami ura)",
        artist="Katsushika Hokusai", year="c. 1830–1832",
        provenance=dict(medium="woodblock print", artist_died=1849,
                        source="jcjohnson/fast-neural-style @ 813c83441953ead2adb3f65f4cc2d5599d735fa7 : "
                               "images/styles/wave.jpg", original_px="928x514 (kept)",
                        public_domain="artist died 1849: public domain worldwide"),
        recipe=dict(style_weight=10.0, style_size=512)),
    "scream": dict(
        file="scream.jpg", title="The Scream (1893 tempera/crayon version)", artist="Edvard Munch", year="1893",
        provenance=dict(museum="National Museum, Oslo", artist_died=1944,
                        source="jcjohnson/fast-neural-style @ 813c83441953ead2adb3f65f4cc2d5599d735fa7 : "
                               "images/styles/the_scream.jpg", original_px="1200x1528 -> 804x1024",
                        public_domain="artist died 23 Jan 1944: public domain since 1 Jan 2015 in life+70 "
                                      "countries; published before 1930, so public domain in the US"),
        recipe=dict(style_weight=10.0, style_size=512)),
    "composition_vii": dict(
        file="composition_vii.jpg", title="Composition VII", artist="Wassily Kandinsky", year="1913",
        provenance=dict(museum="Tretyakov Gallery", artist_died=1944,
                        source="jcjohnson/fast-neural-style @ 813c83441953ead2adb3f65f4cc2d5599d735fa7 : "
                               "images/styles/composition_vii.jpg", original_px="1071x712 -> 1024x681",
                        public_domain="artist died 13 Dec 1944: public domain since 1 Jan 2015 in life+70 "
                                      "countries; published before 1930, so public domain in the US"),
        recipe=dict(style_weight=10.0, style_size=512)),
    "grande_jatte": dict(
        file="grande_jatte.jpg", title="A Sunday on La Grande Jatte", artist="Georges Seurat", year="1884–1886",
        provenance=dict(museum="Art Institute of Chicago", artist_died=1891,
                        source="disney-snoopy/SmArtTorch @ 6cbb6ce3027c4d5dcdc4e5ce2f1793d7cccaaed9 : "
                               "images/GeorgesSeurat-sunday_afternoon.jpg", original_px="1478x979 -> 1024x678",
                        public_domain="artist died 1891: public domain worldwide"),
        recipe=dict(style_weight=10.0, style_size=512)),
    "shipwreck": dict(
        file="shipwreck_minotaur.jpg", title="The Wreck of a Transport Ship (The Shipwreck of the Minotaur)",
        artist="J. M. W. Turner", year="c. 1810",
        provenance=dict(museum="Gulbenkian Museum", artist_died=1851,
                        source="lengstrom/fast-style-transfer @ 0d3d981f7ab948253d355585bdbdfa914247b4d0 : "
                               "examples/style/the_shipwreck_of_the_minotaur.jpg", original_px="1000x690 (kept)",
                        public_domain="artist died 1851: public domain worldwide"),
        recipe=dict(style_weight=10.0, style_size=512)),
}
DEFAULT_SET = ["mona", "starry_night", "great_wave", "scream", "composition_vii", "grande_jatte"]


def log(msg, fh=None):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if fh:
        fh.write(line + "\n")
        fh.flush()


def probe_rate(config, steps=30, warmup=10) -> float:
    """Steady-state images/s of the real training step and data pipeline (not kept)."""
    import torch

    from cvtools.style.train_config import default_workers
    from cvtools.style.train_data import PhotoCrops, make_loader, photo_files
    from cvtools.style.trainer import Trainer

    trainer = Trainer(config)
    files = photo_files(config.photos)
    workers = default_workers() if config.workers is None else config.workers
    ds = PhotoCrops(files, config.image_size, config.seed, config.crop_scale)
    loader = make_loader(ds, 0, warmup + steps, config.batch_size, workers, trainer.device.type == "cuda")
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    t0 = None
    for i, batch in enumerate(loader):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        trainer.step(batch)
    sync()
    return steps * config.batch_size / (time.perf_counter() - t0)


def pack(out: Path, names, export: Path):
    """export/bundle.tar with every style's files (the GPU machine returns at most 8 files)."""
    tmp = export / ".bundle.tar.part"
    with tarfile.open(tmp, "w") as tar:
        for n in names:
            for suffix in (".safetensors", ".json", "_preview.jpg"):
                p = out / f"{n}{suffix}"
                if p.exists():
                    tar.add(p, arcname=p.name)
    tmp.replace(export / "bundle.tar")


#: the recipe keys of a bundled record that say how it trained (TrainConfig fields)
RECORD_RECIPE_KEYS = ("style_weight", "content_weight", "tv_weight", "temporal_weight", "temporal_local", "steps", "batch_size",
                      "image_size", "style_size", "lr", "seed", "crop_scale", "style_layers", "content_layer",
                      "style_layer_weights", "objective")


def recipe_from_record(name):
    """The from-scratch training recipe of the bundled style NAME, from styles/NAME.json.

    A style fine-tuned from earlier weights (great_wave was, 2026-12-06 20:20-23:00 UTC: 300 CPU steps
    against the lattice) keeps those weights' recipe under ``finetuned_from``: a retrain from scratch takes that
    recipe, with the fine-tune's objective (the terms it added), not the fine-tune's short schedule."""
    recipe = json.loads((ROOT / "styles" / f"{name}.json").read_text())["recipe"]
    if "finetuned_from" in recipe:
        recipe = dict(recipe["finetuned_from"], objective=recipe.get("objective"))
    out = {k: recipe[k] for k in RECORD_RECIPE_KEYS if k in recipe}
    if "crop_scale" in out:
        out["crop_scale"] = tuple(out["crop_scale"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--export", help="also keep bundle.tar, log.txt and sheet.jpg here (default: --out)")
    ap.add_argument("--only", help="comma-separated style names (default: the five bundled ones)")
    ap.add_argument("--budget-seconds", type=float, default=75.0, help="training time per style")
    ap.add_argument("--steps", type=int, help="fixed steps instead of a time budget (also instead of a record's "
                    "steps under --from-records)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--grid", help="one recipe key with several values, e.g. style_weight=10,30: one run each")
    ap.add_argument("--set", action="append", default=[], metavar="NAME:KEY=VALUE",
                    help="override one style's recipe, e.g. mona:style_weight=40 (repeatable)")
    ap.add_argument("--plan", help='JSON (or @file.json): {"mona": [{"style_weight": 2}, {"tag": "b", '
                    '"style_weight": 4}], ...}: runs per style (names NAME__TAG, or NAME__key-value); a variant '
                    'may set "objective" (a dict) and "painting_rot90" (ablation); overrides --only/--grid')
    ap.add_argument("--from-records", action="store_true",
                    help="each style's recipe from its bundled record (styles/NAME.json: weights, steps, batch, "
                         "objective): retrain the bundled styles as they are, plus --grid/--set changes")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--deadline", type=float, default=1e9, help="stop starting new styles after this many seconds")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: 64 px, batch 2, 3 steps")
    args = ap.parse_args(argv)

    import torch

    from cvtools.io.atomic import save_image
    from cvtools.io.decode import load_image
    from cvtools.style.stylize import Stylizer, resize_long_side
    from cvtools.style.train import TrainConfig, train_style

    start = time.perf_counter()
    if args.compile:
        import torch._dynamo

        # one compiled graph serves every style's network; never fall back to eager silently
        torch._dynamo.config.cache_size_limit = 64
    shared = Path(args.shared)
    photos = shared / "data" / "photos" / "free"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    export = Path(args.export or args.out)
    export.mkdir(parents=True, exist_ok=True)
    fh = open(export / "log.txt", "a")
    device = "cpu" if args.tiny else "auto"
    log(f"torch {torch.__version__}, cuda {torch.cuda.is_available()} "
        f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''}", fh)
    names = args.only.split(",") if args.only else DEFAULT_SET
    overrides = {}
    for item in args.set:
        n, _, kv = item.partition(":")
        k, _, v = kv.partition("=")
        overrides.setdefault(n, {})[k] = json.loads(v)
    runs = []
    if args.plan:
        plan = Path(args.plan[1:]).read_text() if args.plan.startswith("@") else args.plan
        plan = json.loads(plan)
        if isinstance(plan, dict):  # {style: [variant, ...]} -> [(style, variant, count), ...]
            plan = [(n, v, len(vs)) for n, vs in plan.items() for v in vs]
        else:  # [{"style": name, ...variant}, ...]: runs in this order
            plan = [(v["style"], {k: x for k, x in v.items() if k != "style"}, 2) for v in plan]
        for n, v, count in plan:
            v = dict(v)
            tag = v.pop("tag", None)
            tag = ("__" + (tag or "_".join(f"{k}-{x}" for k, x in v.items()))) if count > 1 or tag else ""
            runs.append((n, n + tag, dict(STYLES[n]["recipe"], **v)))
        names = []
    for n in names:
        base = dict(recipe_from_record(n) if args.from_records else STYLES[n]["recipe"])
        if args.steps is not None:  # an explicit --steps beats the record's count (a --set NAME:steps=N beats both)
            base.pop("steps", None)
        base.update(overrides.get(n, {}))
        if args.grid:
            key, _, values = args.grid.partition("=")
            for v in values.split(","):
                runs.append((n, f"{n}__{key}_{v}", dict(base, **{key: float(v)})))
        else:
            runs.append((n, n, base))

    def config_for(style, run_name, recipe, steps):
        meta = STYLES[style]
        c = TrainConfig(
            style_image=str(shared / "styles" / meta["file"]), photos=str(photos), name=run_name, output=str(out),
            steps=steps, batch_size=2 if args.tiny else args.batch_size, image_size=64 if args.tiny else args.image_size,
            width=args.width, device=device, checkpoint_every=0 if args.tiny else 1000,
            preview_every=0, compile=args.compile, workers=0 if args.tiny else args.workers,
            title=meta["title"], artist=meta["artist"], year=meta["year"],
            provenance=dict(meta["provenance"], file=f"shared/styles/{meta['file']}", terms=SOURCES),
            log_every=1 if args.tiny else 25)
        recipe = dict(recipe)
        rot = recipe.pop("painting_rot90", 0)
        if rot:  # ablation: the painting turned by 90° k times (does the texture turn with it?)
            from PIL import Image

            turned = out / f"{run_name}_painting.png"
            Image.open(c.style_image).convert("RGB").rotate(90 * int(rot), expand=True).save(turned)
            c.style_image = str(turned)
        for k, v in recipe.items():
            setattr(c, k, v)
        if args.tiny:  # whatever the recipe says
            c.style_size, c.steps, c.batch_size = 128, 3, 2
        return c

    steps = args.steps
    if steps is None:
        if args.tiny:
            steps = 3
        else:
            rate = probe_rate(config_for(*runs[0], steps=1000))
            steps = max(50, int(args.budget_seconds * rate / args.batch_size))
            log(f"probe: {rate:.0f} images/s at batch {args.batch_size}, {args.image_size} px -> {steps} steps "
                f"per style ({args.budget_seconds:.0f} s)", fh)
    done = []
    for style, run_name, recipe in runs:
        if time.perf_counter() - start > args.deadline:
            log(f"deadline reached; skipping {run_name}", fh)
            continue
        c = config_for(style, run_name, recipe, steps)
        try:
            t = time.perf_counter()
            result = train_style(c)
            log(f"{run_name}: {result.steps} steps in {time.perf_counter() - t:.0f} s "
                f"({result.images_per_second:.0f} img/s), losses {result.final_losses}, recipe {recipe}", fh)
            (out / f"{run_name}.ckpt").unlink(missing_ok=True)  # resumable runs are not needed here
            st = Stylizer(result.record_path, device=device)
            sample = resize_long_side(load_image(ROOT / "samples" / "chelsea.jpg").rgb, 128 if args.tiny else 512)
            save_image(out / f"{run_name}_preview.jpg", st(sample))
            done.append(run_name)
            pack(out, done, export)
        except Exception:
            log(f"{run_name}: FAILED\n{traceback.format_exc()}", fh)
    if done:
        try:
            from tools.style_contact_sheet import contact_sheet

            samples = [ROOT / "samples" / f for f in ("chelsea.jpg", "astronaut.jpg", "rocket.jpg")]
            sheet = contact_sheet(samples, [str(out / f"{n}.json") for n in done], cell=96 if args.tiny else 320,
                                  device=device, labels=["original"] + done)
            sheet.save(export / "sheet.jpg", quality=88)
        except Exception:
            log(f"contact sheet FAILED\n{traceback.format_exc()}", fh)
    log(f"done: {len(done)} of {len(runs)} runs in {time.perf_counter() - start:.0f} s", fh)
    fh.close()


if __name__ == "__main__":
    main()
