"""The benchmark workloads. Each returns rows: the plain baseline first (ratio 1.0), then the
fast variants with their speed-up and their agreement with the baseline."""

from __future__ import annotations

from typing import Dict, List

from cvtools.bench import Row
from cvtools.bench.timing import measure


def _batch(n, size, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def backbone_classify(dev, quick) -> List[Row]:
    """EfficientNet-Lite0 logits, batch 64 at 224 px (16 on the CPU)."""
    import torch

    from cvtools.backbones import load_backbone

    n = 64 if dev.type == "cuda" else (4 if quick else 16)
    x = _batch(n, 224).to(dev)
    variants = [("unfused fp32 eager (baseline)", dict(fuse=False, precision="fp32", channels_last=False))]
    if dev.type == "cuda":
        variants += [
            ("fused fp32", dict(precision="fp32", channels_last=False)),
            ("fused fp16 channels_last", dict(precision="fp16", channels_last=True)),
            ("fused fp16 channels_last compile", dict(precision="fp16", channels_last=True, compile=True)),
        ]
    else:
        variants += [
            ("fused fp32", dict(precision="fp32", channels_last=False)),
            ("fused fp32 channels_last (default)", dict(precision="fp32", channels_last=True)),
            ("fused bf16 channels_last", dict(precision="bf16", channels_last=True)),
        ]
        if not quick:
            variants.append(("fused fp32 channels_last compile", dict(precision="fp32", channels_last=True, compile=True)))
    rows, ref = [], None
    repeat = 5 if dev.type == "cpu" else 30
    for desc, kw in variants:
        bb = load_backbone("efficientnet_lite0", device=str(dev), **kw)
        with torch.inference_mode():
            t = measure(lambda: bb(x), dev, warmup=3, repeat=repeat)
            out = bb(x).float().cpu()
        if ref is None:
            ref, base_ms, check = out, t.median_ms, "reference"
        else:
            rel = ((out - ref).abs().max() / ref.abs().max()).item()
            same = (out.argmax(1) == ref.argmax(1)).float().mean().item()
            check = f"max|Δ|/max={rel:.1e}, top-1 agree {same:.0%}"
        rows.append(Row("backbone", desc, t.median_ms, f"{n} images", n / t.median_ms * 1e3, "img/s",
                        base_ms / t.median_ms, t.first_ms, check))
    return rows


WORKLOADS: Dict = {
    "backbone": backbone_classify,
}
