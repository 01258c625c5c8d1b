"""DeepDream on the shared backbone: plain, guided, tiled, animated.

>>> from cvtools.backbones import load_backbone
>>> from cvtools.dream import dream
>>> bb = load_backbone()
>>> out = dream(image, bb)                                   # [0, 1] RGB 3×H×W in, same shape out
>>> out = dream(image, bb, layers=["blocks.10:0-15"], octaves=3, steps=20, seed=1)
>>> out = dream(image, bb, guide=flower)                     # grow the guide's features

For folders and animations keep one :class:`DreamEngine` (it reuses guide features, memory plans
and CUDA graphs across images); :func:`dream_frames` zooms into a dream frame after frame.
"""

from cvtools.dream.animation import dream_frames, save_animation, write_dream_animation, zoom
from cvtools.dream.engine import DEFAULT_STEP_SIZE, DreamEngine, DreamSettings, dream, octave_sizes
from cvtools.dream.jitter import roll2d, roll_indices
from cvtools.dream.objective import DreamObjective, LayerTarget, parse_layer_target, resolve_layer_targets
from cvtools.dream.tiling import tile_spans, tiled_gradient

__all__ = [
    "DEFAULT_STEP_SIZE", "DreamEngine", "DreamObjective", "DreamSettings", "LayerTarget", "dream", "dream_frames",
    "octave_sizes", "parse_layer_target", "resolve_layer_targets", "roll2d", "roll_indices", "save_animation",
    "tile_spans", "tiled_gradient", "write_dream_animation", "zoom",
]
