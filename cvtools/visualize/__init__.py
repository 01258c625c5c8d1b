"""CNN visualization: attribution maps, their trust checks, and feature visualization.

>>> from cvtools.backbones import load_backbone
>>> from cvtools.visualize import gradcam, make_method, Explainer
>>> bb = load_backbone("efficientnet_lite0")
>>> maps = gradcam(bb, x)                                  # N×H×W in [0, 1], one batched pass
>>> sg = make_method("smoothgrad", bb, samples=32)         # one class per method ...
>>> raw = sg.attribute(x, target=None)                     # ... with one attribute()
>>> heat = sg.heatmap(raw)                                 # N×H×W in [0, 1], for drawing

Modules: ``attribution`` (the gradient methods), ``cam`` (a layer's activations, gradients and the
CAM weight formulas), ``cams`` (the CAM classes: one base class, a subclass per weighting),
``methods`` (the registry, ``make_method``), ``explain``
(several methods over batches, and the drawn panels), ``render`` and ``colormaps`` (pictures),
``sanity`` (cascading randomisation), ``metrics`` (deletion/insertion AUC), ``activations``
(feature-map grids) and ``featurevis`` (lucent-style feature visualization).

Names are imported lazily so that ``catalog`` (method names for the command line) loads without torch.
"""

import importlib

_EXPORTS = {
    "gradcam": "cam", "layer_gradients": "cam", "cam_from_gradients": "cam",
    "CAM": "cams", "HiResCAM": "cams", "XGradCAM": "cams", "EigenCAM": "cams", "ScoreCAM": "cams",
    "AblationCAM": "cams",
    "Attribution": "attribution", "METHODS": "methods", "make_method": "methods", "make_methods": "methods",
    "Saliency": "attribution", "SmoothGrad": "attribution", "IntegratedGradients": "attribution",
    "InputXGradient": "attribution", "Occlusion": "attribution", "GuidedBackprop": "attribution",
    "GradCAM": "cams", "GradCAMPlusPlus": "cams", "LayerCAM": "cams",
    "GuidedGradCAM": "cams", "guided_relus": "attribution",
    "Explainer": "explain", "Explanation": "explain", "draw_explanation": "explain", "analysis_tensor": "explain",
    "PixelModel": "model",
    "cascading_randomization": "sanity", "deletion_insertion": "metrics",
    "activation_grid": "activations",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"cvtools.visualize.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'cvtools.visualize' has no attribute {name!r}")
