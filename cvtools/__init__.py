"""cvtools: image effects and CNN visualization on PyTorch.

The command line (``cvtools ...``) is a thin layer over this package's Python API:

>>> from cvtools.backbones import load_backbone
>>> bb = load_backbone("efficientnet_lite0")          # embedded ImageNet weights
>>> logits = bb(images)                                # images: N×3×H×W in [0, 1]
>>> feats = bb.features(images, ["blocks.4", "blocks.7"])

A folder or a video, as ``cvtools stylize`` does it (same names, markers, re-run policy):

>>> from cvtools import stylize_files
>>> report = stylize_files(["photos/", "clip.mp4"], style="mona", output="out/")

Heavy modules (torch) are imported lazily so ``cvtools --help`` stays instant.
"""

__version__ = "0.1.0"

from pathlib import Path as _Path

#: The sample photos shipped with the package (public domain / CC0: SOURCES.md there); the
#: repository's ``samples/`` links here. The synthetic test clips, export checks and benchmarks
#: use them, so they work in an installed copy too.
SAMPLES_DIR = _Path(__file__).resolve().parent / "data" / "samples"


def __getattr__(name):
    # The Python API's entry points, imported when first used: ``import cvtools`` stays light.
    if name == "stylize_files":
        from cvtools.style.job import stylize_files

        return stylize_files
    if name == "dream_files":
        from cvtools.dream.job import dream_files

        return dream_files
    if name == "classify_files":
        from cvtools.classify import classify_files

        return classify_files
    if name in ("explain_files", "score_files", "activations_files", "render_filters"):
        from cvtools.visualize import job

        return getattr(job, name)
    raise AttributeError(f"module 'cvtools' has no attribute {name!r}")
