#!/usr/bin/env python3
"""Install a trained style (NAME.json + NAME.safetensors from train-style or
benchmarks/train_bundled_styles.py) as a bundled style under cvtools/style/bundled/.

    python tools/install_bundled_style.py runs/mona__style_weight-2.5.json --name mona

The weights are re-saved under the bundled name (fp16 safetensors, name in the metadata), the
record's name, file, SHA-256 and size are updated, and the training-machine path of the photo
folder is replaced by the shared-data path it stands for. Quality numbers are added later by
tools/style_quality.py --write.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record")
    ap.add_argument("--name", required=True)
    args = ap.parse_args(argv)

    from cvtools.style.records import BUNDLED_RECORDS, BUNDLED_WEIGHTS, read_record, save_style_weights

    rec = read_record(args.record)
    net = rec.load_network(verify=True)
    BUNDLED_RECORDS.mkdir(parents=True, exist_ok=True)
    BUNDLED_WEIGHTS.mkdir(parents=True, exist_ok=True)
    target = BUNDLED_WEIGHTS / f"{args.name}.safetensors"
    sha = save_style_weights(net, target, name=args.name)
    rec.recipe["trained_as"] = rec.name
    rec.name = args.name
    rec.weights.update(file=target.name, sha256=sha, bytes=target.stat().st_size)
    photos = rec.recipe.get("photos", "")
    rec.recipe["photos"] = re.sub(r"from .*data/photos/free", "from shared/data/photos/free", photos)
    rec.weights_dir = BUNDLED_WEIGHTS
    path = rec.save(BUNDLED_RECORDS / f"{args.name}.json")
    print(f"installed {args.name}: {path}, {target} ({target.stat().st_size / 1e6:.2f} MB, sha256 {sha[:12]}…)")


if __name__ == "__main__":
    main()
