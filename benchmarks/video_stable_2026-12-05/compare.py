#!/usr/bin/env python3
"""The blend against the carry on the same clips (issue 29): a markdown table from two
`tools/video_flicker.py --table --json` files, and how many rows meet the issue's two bounds
(stable / frame by frame ≤ 0.6 and style distance change ≤ +5 %).

    python benchmarks/video_stable_2026-12-05/compare.py blend45.json carry45.json
"""

import json
import sys


def main(blend_path, carry_path):
    blend, carry = json.load(open(blend_path))["rows"], json.load(open(carry_path))["rows"]
    key = {(r["clip"], r["style"]): r for r in carry}
    print("| clip | network | frame by frame ×10³ | blend: stable / fbf | style change | carry: stable / fbf | style change |")
    print("|---|---|---:|---:|---:|---:|---:|")
    met = {"blend": [0, 0, 0], "carry": [0, 0, 0]}  # steadiness, style, both
    for b in blend:
        c = key[(b["clip"], b["style"])]
        print(f"| {b['clip']} | {b['style']} | {b['fbf'] * 1e3:.3f} | {b['ratio']:.2f} | {b['style_change']:+.1%} | "
              f"**{c['ratio']:.2f}** | **{c['style_change']:+.1%}** |")
        for name, r in (("blend", b), ("carry", c)):
            steady, style = r["ratio"] <= 0.6, r["style_change"] <= 0.05
            met[name][0] += steady
            met[name][1] += style
            met[name][2] += steady and style
    n = len(blend)
    for name, (a, s, both) in met.items():
        ratios = [r["ratio"] for r in (blend if name == "blend" else carry)]
        changes = [r["style_change"] for r in (blend if name == "blend" else carry)]
        print(f"\n{name}: steadiness ≤ 0.6 in {a} of {n}, style ≤ +5 % in {s} of {n}, both in {both} of {n}; "
              f"ratio mean {sum(ratios) / n:.2f} (max {max(ratios):.2f}), style change mean {sum(changes) / n:+.1%} "
              f"(max {max(changes):+.1%})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
