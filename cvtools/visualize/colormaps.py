"""Colour maps for heat maps, without matplotlib (not a dependency of cvtools).

Perceptual maps (viridis, inferno, magma, turbo) are stored as 33 evenly spaced anchors taken from
matplotlib and linearly interpolated to 256 entries: at most 4/255 from matplotlib's own tables,
which no eye can see. Jet is piecewise linear by definition, so its breakpoints are exact.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_ANCHORS = {
    "viridis": (
        "440154470d6048186a482374472d7b4537814240863e49893b528b375b8d33638d2f6b8e2c728e297a8e26828e23898e"
        "21918c1f988b1fa08822a78528ae8032b67a3fbc734ec36b5ec96270cf5784d44b98d83eaddc30c2df23d8e219ece51b"
        "fde725"
    ),
    "inferno": (
        "0000040403120b0724150b37210c4a2f0a5b3d09654a0c6b57106e64156e71196e7d1e6d8a226a972766a32c61b0315b"
        "bc3754c73e4cd24644db503be45a31eb6628f1731df68013f98e09fb9d07fcac11fbbc21f9cb35f5db4cf2ea69f3f68a"
        "fcffa4"
    ),
    "magma": (
        "0000040303120a0822130d341d114729115a36106b440f7651127c5d177f6a1c81762181832681902a819c2e7faa337d"
        "b73779c43c75d0416fdc4869e75263ef5d5ef56b5cf9795dfc8961fd9869fea772feb67cfec488fed395fde2a3fcf0b2"
        "fcfdbf"
    ),
    "turbo": (
        "30123b392a734040a24456c7466be34680f64294ff37a8fa28bceb1ccdd818ddc21fe9af32f2984ef97d6dfe628bff4b"
        "a4fc3cb9f635cdec34dfdf37eecf3af8be39fdac34fe962bfb7e21f46617eb500edf3f08d02f05be2102a91601920b01"
        "7a0403"
    ),
}

# matplotlib's segment data for jet: (x, value) breakpoints per channel.
_JET = (
    ((0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)),
    ((0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)),
    ((0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)),
)

COLORMAPS = ("jet", "turbo", "inferno", "viridis", "magma", "gray")


@lru_cache(maxsize=None)
def lookup_table(name: str) -> np.ndarray:
    """The 256×3 float32 table (values in [0, 1]) of colour map ``name``."""
    from cvtools.errors import UsageError

    x = np.linspace(0.0, 1.0, 256)
    if name == "gray":
        table = np.repeat(x[:, None], 3, axis=1)
    elif name == "jet":
        table = np.stack([np.interp(x, [p for p, _ in seg], [v for _, v in seg]) for seg in _JET], axis=1)
    elif name in _ANCHORS:
        anchors = np.frombuffer(bytes.fromhex(_ANCHORS[name]), dtype=np.uint8).reshape(-1, 3) / 255.0
        xs = np.linspace(0.0, 1.0, len(anchors))
        table = np.stack([np.interp(x, xs, anchors[:, c]) for c in range(3)], axis=1)
    else:
        raise UsageError(f"unknown colour map {name!r}; choose from {', '.join(COLORMAPS)}")
    return table.astype(np.float32)


def apply_colormap(values, name: str = "jet"):
    """Map values in [0, 1] (a tensor of any shape S) to RGB, a float tensor S×3 ... moved so that
    the colour axis comes first for image-shaped input: H×W -> 3×H×W, N×H×W -> N×3×H×W."""
    import torch

    table = torch.from_numpy(lookup_table(name)).to(values.device)
    index = values.detach().float().clamp(0, 1).mul(255).round().long()
    rgb = table[index]  # S×3
    return rgb.movedim(-1, -3) if values.dim() >= 2 else rgb
