"""The synthetic table with carry.HISTOGRAM_BLEND on (histogram_blend_synthetic_table.json) beside the
defaults' (../../video_stable_2026-12-05/footage/synthetic_contrast_32frames.json; great_wave's rows from
today's weights, great_wave_c200_synthetic_table.json): ratio and style change per row."""
import json
import os

here = os.path.dirname(os.path.abspath(__file__))


def rows(path):
    d = json.load(open(path))
    return {(r["clip"], r["style"]): r for r in (d["rows"] if isinstance(d, dict) else d)}


base = rows(os.path.join(here, "../../video_stable_2026-12-05/footage/synthetic_contrast_32frames.json"))
base.update(rows(os.path.join(here, "great_wave_c200_synthetic_table.json")))
hist = rows(os.path.join(here, "histogram_blend_synthetic_table.json"))
print("| clip | style | defaults: ratio, style change | histogram blend |")
print("|---|---|---:|---:|")
both = []
for key in sorted(hist):
    if key not in base:
        continue
    b, h = base[key], hist[key]
    both.append((b, h))
    print(f"| {key[0]} | {key[1]} | {b['ratio']:.2f}, {b['style_change'] * 100:+.1f} % | "
          f"{h['ratio']:.2f}, {h['style_change'] * 100:+.1f} % |")
ok = lambda r: r["ratio"] <= 0.6 and r["style_change"] <= 0.05  # noqa: E731
print(f"\n{len(both)} rows; both bounds: defaults {sum(ok(b) for b, _ in both)}, histogram {sum(ok(h) for _, h in both)}; "
      f"mean style change {sum(b['style_change'] for b, _ in both) / len(both) * 100:+.1f} % -> "
      f"{sum(h['style_change'] for _, h in both) / len(both) * 100:+.1f} %; mean ratio "
      f"{sum(b['ratio'] for b, _ in both) / len(both):.3f} -> {sum(h['ratio'] for _, h in both) / len(both):.3f}")
