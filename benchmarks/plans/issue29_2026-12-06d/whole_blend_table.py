"""The whole_blend_*.json rows as one table: ratio (stable / frame by frame, TV-L1) and style change per value."""
import glob
import json
import os
import re
from collections import defaultdict

here = os.path.dirname(os.path.abspath(__file__))
cells = defaultdict(dict)
values = set()
for f in glob.glob(os.path.join(here, "whole_blend_*.json")):
    clip, value = re.match(r"whole_blend_(.+)_([0-9.]+)\.json", os.path.basename(f)).groups()
    values.add(value)
    for r in json.load(open(f))["rows"]:
        cells[(clip, r["style"])][value] = (r["ratio"], r.get("style_change"))
values = sorted(values, key=float, reverse=True)
print("| clip | style | " + " | ".join(f"whole blend {v}" for v in values) + " |")
print("|---|---|" + "---:|" * len(values))
for (clip, style), row in sorted(cells.items()):
    out = []
    for v in values:
        if v in row:
            ratio, change = row[v]
            out.append(f"{ratio:.2f}, {change * 100:+.1f} %" if change is not None else f"{ratio:.2f}")
        else:
            out.append("")
    print(f"| {clip} | {style} | " + " | ".join(out) + " |")
