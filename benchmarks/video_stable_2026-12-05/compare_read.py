#!/usr/bin/env python3
"""The carry mode's read (issue 29, 2026-12-05): Keys' bicubic against the cubic and the quintic
B-spline, as a markdown table from `tools/video_flicker.py --table --json` files, and how many rows
meet the issue's two bounds (stable / frame by frame ≤ 0.6, style distance change ≤ +5 %).

    python benchmarks/video_stable_2026-12-05/compare_read.py carry_shipped_32frames.json \
        carry_keys_painting_A5_32frames.json carry_bspline_32frames.json carry_quintic_fp16_32frames.json

The Keys rows of the bundled networks are the shipped carry's (carry_shipped_32frames.json: the
same networks, identical frame-by-frame numbers); the any-painting rows are re-run the same day
with the Keys read, because the any-painting network changed since (A5)."""

import json
import statistics
import sys


def main(keys_path, keys_painting_path, *paths):
    painting = {(r["clip"], r["style"]): r for r in json.load(open(keys_painting_path))["rows"]}
    names = ["Keys", "cubic B-spline", "quintic B-spline"][: 1 + len(paths)]
    others = [{(r["clip"], r["style"]): r for r in json.load(open(p))["rows"]} for p in paths]
    print("| clip | network | frame by frame ×10³ | " + " | ".join(f"{n}: stable / fbf | style change" for n in names) + " |")
    print("|---|---|---:|" + "---:|---:|" * len(names))
    rows = {n: [] for n in names}
    for old in json.load(open(keys_path))["rows"]:
        key = (old["clip"], old["style"])
        old = painting.get(key, old) if key[1].startswith("any:") else old
        line = [old] + [o[key] for o in others]
        for r in line[1:]:
            if abs(r["fbf"] - old["fbf"]) > 1e-3 * old["fbf"]:
                raise SystemExit(f"{key}: frame-by-frame errors differ ({old['fbf']} vs {r['fbf']}): not the same network")
        cells = " | ".join(f"{r['ratio']:.2f} | {r['style_change']:+.1%}" for r in line)
        print(f"| {key[0]} | {key[1]} | {old['fbf'] * 1e3:.3f} | {cells} |")
        for n, r in zip(names, line):
            rows[n].append(r)
    print()
    for name, rs in rows.items():
        steady = [r["ratio"] <= 0.6 for r in rs]
        style = [r["style_change"] <= 0.05 for r in rs]
        both = sum(a and b for a, b in zip(steady, style))
        print(f"{name}: steadiness ≤ 0.6 in {sum(steady)} of {len(rs)}, style ≤ +5 % in {sum(style)}, both in {both}; "
              f"ratio mean {statistics.mean(r['ratio'] for r in rs):.2f} (max {max(r['ratio'] for r in rs):.2f}), "
              f"style change mean {statistics.mean(r['style_change'] for r in rs):+.1%} "
              f"(max {max(r['style_change'] for r in rs):+.1%})")


if __name__ == "__main__":
    main(*sys.argv[1:])
