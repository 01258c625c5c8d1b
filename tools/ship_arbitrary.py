#!/usr/bin/env python3
"""Ship a training run's any-painting weights as the bundled network (issue 28).

    python tools/ship_arbitrary.py RUN_DIR --note "what the run was" [--shared ../shared]

RUN_DIR holds a run's ``arbitrary.safetensors`` and ``arbitrary.json`` (benchmarks/train_arbitrary.py).
Copies the weights to cvtools/style/bundled/weights/, and writes cvtools/style/bundled/arbitrary.json:
the run's record, its ``weights`` path made the package's, the shipped record before it appended
to ``history`` (its measurements and SHA-256, without its own history and embeddings), and the
six bundled paintings' embeddings re-encoded with the new weights (CPU, fp32, ``load_painting``
of shared/styles: the files the bundled networks were trained on, each at its network's style size),
so blends that name bundled styles need no painting files. Judge the weights first:
tools/arbitrary_quality.py --weights.

    python tools/ship_arbitrary.py --reencode-embeddings [--shared ../shared]

only re-encodes the shipped record's embeddings (the weights stay).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: what the record keeps of each earlier run (as the entries already there)
HISTORY_KEYS = ("steps", "sha256", "images_per_second", "evaluation", "date", "device")
BUNDLED = ["composition_vii", "grande_jatte", "great_wave", "mona", "scream", "starry_night"]
EMBEDDINGS_NOTE = (
    "embeddings of the bundled styles' paintings (shared/styles, the files the bundled networks were trained "
    "on; held out of this network's training), encoded on the CPU in fp32 with load_painting, each with its "
    "long side at its bundled network's style size (grande_jatte 1024 px, the others 512: the scale of the "
    "strokes and dots that network paints, and the scale QUALITY's yardstick judges it at): blends that name "
    "bundled styles use these, so the paintings need not ship")


def bundled_embeddings(stylizer, styles: Path) -> dict:
    """Each bundled painting's embedding, the painting's long side at its network's style size."""
    from cvtools.io.decode import pil_to_tensor
    from cvtools.style.records import bundled_records, load_painting

    sizes = {r.name: int(r.recipe.get("style_size", 512)) for r in bundled_records()}
    return {name: [round(float(v), 6) for v in stylizer.encode(pil_to_tensor(load_painting(styles / f"{name}.jpg")),
                                                                  sizes[name])]
            for name in BUNDLED}


def _set_embeddings(record: dict, encodings: dict) -> None:
    """The bundled paintings' encodings, as both the encodings and (until fitted again) the
    embeddings blends use; an earlier fit's record is dropped (it was for other weights)."""
    record["style_encodings"] = encodings
    record["style_embeddings"] = dict(encodings)
    record["style_embeddings_note"] = EMBEDDINGS_NOTE
    record.pop("style_embeddings_fit", None)
    record.pop("style_tokens", None)  # new weights have none (tools/bundled_style_tokens.py adds them)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", help="a training run's output folder")
    ap.add_argument("--note", help="one line for the history entry of the record it replaces")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--reencode-embeddings", action="store_true",
                    help="only re-encode the shipped record's bundled-style embeddings")
    args = ap.parse_args(argv)

    import torch

    from cvtools.style.arbitrary import BUNDLED_RECORD, ArbitraryStylizer, load_network

    torch.set_grad_enabled(False)
    styles = Path(args.shared) / "styles"
    if args.reencode_embeddings:
        record = json.loads(BUNDLED_RECORD.read_text())
        _set_embeddings(record, bundled_embeddings(ArbitraryStylizer(device="cpu"), styles))
        BUNDLED_RECORD.write_text(json.dumps(record, indent=1) + "\n")
        print(f"re-encoded {len(record['style_embeddings'])} bundled styles' embeddings in {BUNDLED_RECORD}; "
              "fit them again: tools/fit_bundled_embeddings.py --write")
        return 0
    if not args.run or not args.note:
        ap.error("give a run folder and --note (or --reencode-embeddings)")

    run = Path(args.run)
    record = json.loads((run / "arbitrary.json").read_text())
    load_network(run / "arbitrary.safetensors", sha256=record["sha256"])  # the run's file is what it says
    old = json.loads(BUNDLED_RECORD.read_text())
    history = list(old.get("history", []))
    history.append({"run": args.note, **{k: old.get(k) for k in HISTORY_KEYS}})
    target = BUNDLED_RECORD.parent / "weights" / "arbitrary.safetensors"
    shutil.copyfile(run / "arbitrary.safetensors", target)
    record["weights"] = "weights/arbitrary.safetensors"
    record["history"] = history
    stylizer = ArbitraryStylizer(weights=str(target), device="cpu")
    _set_embeddings(record, bundled_embeddings(stylizer, styles))
    BUNDLED_RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"shipped {run} ({record['sha256'][:12]}…) as {target}; {len(history)} earlier runs in its history; "
          "then fit the bundled embeddings: tools/fit_bundled_embeddings.py --write")
    return 0


if __name__ == "__main__":
    sys.exit(main())
