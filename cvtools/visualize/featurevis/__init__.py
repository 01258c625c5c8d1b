"""Feature visualization in the style of lucid/lucent: ``param`` (how an image is represented),
``objectives`` (what to maximise), ``transforms`` (robustness), ``render`` (the optimisation).

>>> from cvtools.visualize.featurevis import render, objectives
>>> vis = render(bb, objectives.channel("blocks.8", list(range(16))), batch=16, size=128, steps=256)
>>> vis.images                                   # 16×3×128×128 in [0, 1]
"""

from cvtools.visualize.featurevis import objectives, param, transforms
from cvtools.visualize.featurevis.param import ImageParam
from cvtools.visualize.featurevis.render import Visualization, evaluate, labelled_grid, parse_channels, render

__all__ = ["objectives", "param", "transforms", "ImageParam", "Visualization", "render", "evaluate",
           "labelled_grid", "parse_channels"]
