"""Paired style-distance difference per photo (candidate - shipped) from tools/style_quality.py JSON files:
mean, its standard error, relative change of the mean, and how many photos got closer.

    python benchmarks/plans/session_o/paired.py judge/sq_mona.json ..."""
import json
import math
import sys

for path in sys.argv[1:]:
    runs = json.load(open(path))
    base_name = next(iter(runs))
    base = {r["photo"]: r["style"] for r in runs[base_name]["rows"]}
    for name, run in runs.items():
        if name == base_name:
            continue
        diffs = [r["style"] - base[r["photo"]] for r in run["rows"]]
        n = len(diffs)
        mean = sum(diffs) / n
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n)
        shipped = sum(base.values()) / len(base)
        closer = sum(d < 0 for d in diffs)
        print(f"{name}: {shipped:.3f} -> {shipped + mean:.3f} ({100 * mean / shipped:+.1f} %, {mean:+.4f} ± {se:.4f}, "
              f"closer on {closer} of {n})")
