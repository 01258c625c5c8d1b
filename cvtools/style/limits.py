"""The sizes a style network may have (torch-free, so reading a style record stays instant).

A style record, weights file or checkpoint is untrusted input: the network shape it declares is
checked against these bounds before anything is built. At the upper ends a network has ~80 M
parameters (~320 MB in fp32); the bundled styles are width 0.5 with 5 residual blocks.
"""

import math
from typing import Tuple

MIN_WIDTH, MAX_WIDTH = 0.125, 4.0
MAX_RESIDUAL_BLOCKS = 16


def check_architecture(width, residual_blocks) -> Tuple[float, int]:
    """``(width, residual_blocks)`` as (float, int) when they are within the bounds above, else
    a ValueError whose message says which is out of range (callers add the file's name)."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width):
        raise ValueError(f"width {width!r} is not a number")
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValueError(f"width {width:g} is outside {MIN_WIDTH:g}-{MAX_WIDTH:g}")
    if isinstance(residual_blocks, bool) or not isinstance(residual_blocks, int):
        raise ValueError(f"residual_blocks {residual_blocks!r} is not a whole number")
    if not 0 <= residual_blocks <= MAX_RESIDUAL_BLOCKS:
        raise ValueError(f"residual_blocks {residual_blocks} is outside 0-{MAX_RESIDUAL_BLOCKS}")
    return float(width), int(residual_blocks)


def checked_strength(strength) -> float:
    """``strength`` as a float between 0 and 1, or a one-line UsageError (a string such as "0.5",
    None, NaN or a value off the range): the one check every stylizer's call makes (torch-free,
    for the ONNX paths)."""
    from cvtools.errors import UsageError

    if isinstance(strength, (str, bytes, bool)) or not hasattr(strength, "__float__"):
        raise UsageError(f"strength must be a number between 0 and 1, not {strength!r}", param="strength")
    try:
        value = float(strength)
    except (TypeError, ValueError):  # a tensor of several values
        raise UsageError(f"strength must be one number between 0 and 1, not {strength!r}", param="strength") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"strength must be between 0 and 1, not {strength}", param="strength")
    return value
