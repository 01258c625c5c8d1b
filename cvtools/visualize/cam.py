"""Class activation maps: the layer's activations (and gradients), the methods' channel weights as
plain tensor functions, and the ReLU / min-max / upsampling every CAM shares. The method classes
are in :mod:`cvtools.visualize.cams` (one base class; a method overrides only its weights).

The fast path, built for issue 9's speed target:

- one forward pass over the whole batch, with a single forward hook at the CAM layer that swaps
  the layer's output for a fresh leaf tensor. Nothing below the layer requires grad (parameters are
  frozen and the input is not a leaf that needs grad), so autograd records only the small graph
  from the layer to the logits, and no parameter or input gradients are ever computed;
- one ``torch.autograd.grad`` of the sum of each image's selected logit with respect to that leaf
  (images are independent in eval mode, so the sum gives each image its own gradient);
- weighting, ReLU, per-image min-max, bilinear upsampling and min-max again, all on the device in
  batched tensor ops: no host synchronisation and no Python loop per image.

On a GPU the backbone runs in fp16 and channels-last (as ``load_backbone`` sets it up); the
weighting is done in fp32. :func:`gradcam` is the function to time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from cvtools.errors import UsageError
from cvtools.visualize.model import Target, resolve_class_indices


@dataclass
class LayerGradients:
    activation: torch.Tensor  # N×C×h×w, the layer's output (compute dtype)
    gradient: Optional[torch.Tensor]  # N×C×h×w, d(selected logit)/d(activation); None for gradient-free CAMs
    logits: torch.Tensor  # N×classes, float32
    target: Optional[torch.Tensor]  # N, the class index explained for each image (None: class-agnostic)


def layers_listing(backbone) -> str:
    """The command that lists ``backbone``'s layers: ``cvtools layers NAME`` for a registered
    backbone, ``cvtools layers --model FILE`` for a network the user brought."""
    from cvtools.backbones.registry import backbone_names

    return f"cvtools layers {backbone.name}" if backbone.name in backbone_names() else "cvtools layers --model FILE"


def check_layer_name(backbone, layer: Optional[str], role: str = "cam", feature_map: bool = False) -> str:
    """``layer`` (default: the backbone's ``role`` layer) when it names one of its layers, else a
    one-line UsageError with the closest names and the command that lists them all (the whole
    list is hundreds of names on a ViT, cut off by the terminal). ``feature_map``: the layer must
    also output a map (not the pooled vector or the logits); that is refused here, once, instead
    of per photo from inside the forward pass, with layers that do output one."""
    from cvtools.errors import did_you_mean

    layer = layer or backbone.default_layer(role)
    listing = layers_listing(backbone)
    if backbone.layer_paths and layer not in backbone.layer_paths:
        hint = did_you_mean(layer, backbone.layer_paths)
        raise UsageError(f"unknown layer {layer!r} for {backbone.name}{hint} (`{listing}` lists them)", param="layer")
    backbone.check_layers([layer])  # a network without tappable layers says why
    if feature_map:
        maps = [info.name for info in backbone.layers if info.stride > 0]
        if layer not in maps:
            default = backbone.defaults.cam
            before = [n for n in maps[:maps.index(default)] if n != default][-2:] if default in maps else maps[-2:]
            picks = ([f"{default} (the default)"] if default in maps else []) + before[::-1]
            raise UsageError(f"layer={layer!r} of {backbone.name} does not output a feature map (a pooled vector "
                             f"or the logits); pick one that does, e.g. {', '.join(picks)} (`{listing}` lists them)",
                             param="layer")
    return layer


def layer_gradients(backbone, x: torch.Tensor, target: Target = None, layer: Optional[str] = None) -> LayerGradients:
    """The activation of ``layer`` and the gradient of each image's target logit with respect to it."""
    layer = layer or backbone.defaults.cam
    module = backbone.module(layer)
    seen = []

    def hook(mod, inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise UsageError(f"layer={layer!r} does not output a feature map; pick another", param="layer")
        leaf = output.detach().requires_grad_(True)
        seen.append(leaf)
        # The clone keeps the leaf intact if a later in-place op (ReLU(inplace=True)) writes into
        # what this module returned.
        return leaf.clone()

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = backbone.model(backbone.prepare(x)).float()
            if len(seen) != 1:
                raise UsageError(f"layer={layer!r} runs {len(seen)} times per forward pass; pick another",
                                 param="layer")
            idx = resolve_class_indices(target, logits)
            selected = logits.gather(1, idx[:, None]).sum()
            (grad,) = torch.autograd.grad(selected, seen[0])
    finally:
        handle.remove()
    return LayerGradients(seen[0].detach(), grad, logits.detach(), idx)


def layer_activation(backbone, x: torch.Tensor, layer: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """(activation N×C×h×w in the compute dtype, logits N×classes float32) from one forward pass
    without gradients."""
    module = backbone.module(layer)
    seen = []

    def hook(mod, inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise UsageError(f"layer={layer!r} does not output a feature map; pick another", param="layer")
        seen.append(output.detach().clone())  # a clone: an in-place op after the layer must not change it

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = backbone.model(backbone.prepare(x)).float()
    finally:
        handle.remove()
    if len(seen) != 1:
        raise UsageError(f"layer={layer!r} runs {len(seen)} times per forward pass; pick another", param="layer")
    return seen[0], logits


def gradcam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): the spatially averaged gradients (N×C×1×1)."""
    return gradient.float().mean(dim=(2, 3), keepdim=True)


def gradcampp_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018): the sum of ``alpha * relu(grad)`` (N×C×1×1) with
    ``alpha = g^2 / (2 g^2 + sum(A) g^3) = 1 / (2 + sum(A) g)`` (the closed form for an
    exponential score, as in the paper's code). Only positions with g > 0 count, and the paper
    assumes A >= 0 (after a ReLU), so there ``alpha`` lies in (0, 1/2]. Inner layers of
    EfficientNet-Lite are signed (no ReLU after the projection): at blocks.10 about half the
    channels have sum(A) < 0, ``2 + sum(A) g`` passes near zero, ``alpha`` explodes or flips
    sign, and 1e-3 of input noise changed the map to correlation 0.19-0.85 (0.11 at
    blocks.12). So ``sum(A)`` is taken as ``max(sum(A), 0)``: unchanged wherever the
    activations are non-negative (every last CAM layer here: a ReLU output), bounded
    elsewhere (correlation under the same noise 0.994-0.999 at blocks.6/10/12, equal to a
    float64 recomputation to 1e-4). pytorch-grad-cam adds 1e-6 to the denominator and keeps
    the sign: at the last layer its maps differ from these by up to 0.05 (identical, to
    2e-7, with that epsilon added; Grad-CAM and LayerCAM match it exactly); at signed inner
    layers it has the instability above."""
    positive = gradient.float().clamp_min(0)
    total = activation.float().sum(dim=(2, 3), keepdim=True).clamp_min(0)
    alpha = 1 / (2 + total * positive)  # in (0, 1/2]; only multiplies positive gradients
    return (alpha * positive).sum(dim=(2, 3), keepdim=True)


def layercam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """LayerCAM (Jiang et al. 2021): every position weighted by its own positive gradient (N×C×h×w)."""
    return gradient.float().clamp_min(0)


def hirescam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """HiResCAM (Draelos & Carin 2020): the gradient itself, kept per position (N×C×h×w)."""
    return gradient.float()


def xgradcam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM (Fu et al. 2020): ``sum_hw grad * A / (sum_hw A + 1e-7)`` (pytorch-grad-cam's 1e-7)."""
    a, g = activation.float(), gradient.float()
    return (g * a).sum(dim=(2, 3), keepdim=True) / (a.sum(dim=(2, 3), keepdim=True) + 1e-7)


def weighted_activations(activation: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The N×1×h×w map at the layer's resolution: ``relu(sum_c weights * A)`` (weights N×C×1×1 per
    channel or N×C×h×w per position)."""
    return (weights * activation.float()).sum(dim=1, keepdim=True).clamp_min(0)


#: The gradient-weighted CAMs as (activation, gradient) -> weights, for :func:`cam_from_gradients`.
GRADIENT_WEIGHTS: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "gradcam": gradcam_weights, "gradcam++": gradcampp_weights, "layercam": layercam_weights,
    "hirescam": hirescam_weights, "xgradcam": xgradcam_weights,
}
CAM_KINDS = tuple(GRADIENT_WEIGHTS)


def cam_from_gradients(activation: torch.Tensor, gradient: torch.Tensor, kind: str = "gradcam") -> torch.Tensor:
    """The N×1×h×w map of a gradient-weighted CAM at the layer's resolution (after the ReLU, before
    any normalisation); ``kind``: one of :data:`CAM_KINDS`. The functional form of the classes in
    :mod:`cvtools.visualize.cams` (the same weight functions)."""
    if kind not in GRADIENT_WEIGHTS:
        raise UsageError(f"unknown CAM kind {kind!r}; choose from {', '.join(CAM_KINDS)}")
    return weighted_activations(activation, GRADIENT_WEIGHTS[kind](activation, gradient))


def minmax(t: torch.Tensor) -> torch.Tensor:
    """Scale each image (dim 0) to [0, 1]; an all-constant map becomes all zeros."""
    dims = tuple(range(1, t.dim()))
    lo = t.amin(dim=dims, keepdim=True)
    span = t.amax(dim=dims, keepdim=True) - lo
    return (t - lo) / torch.where(span > 0, span, 1)


def upsample_cam(cam: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """N×1×h×w -> N×1×H×W in [0, 1]: min-max, bilinear upsampling, min-max again (as captum's
    LayerGradCam is usually displayed)."""
    cam = F.interpolate(minmax(cam), size=tuple(size), mode="bilinear", align_corners=False)
    return minmax(cam)


def gradcam(backbone, x: torch.Tensor, target: Target = None, layer: Optional[str] = None,
            kind: str = "gradcam") -> torch.Tensor:
    """Class activation maps for a batch of [0, 1] RGB images (N×3×H×W on the backbone's device).

    Returns float32 maps N×H×W in [0, 1] at the input's resolution, on the device. ``target``:
    None (each image's top class), a class index or name, or one index per image. ``layer``:
    a name from ``backbone.layer_paths`` (default ``backbone.defaults.cam``). ``kind``:
    one of :data:`CAM_KINDS`.
    """
    lg = layer_gradients(backbone, x, target, layer)
    cam = cam_from_gradients(lg.activation, lg.gradient, kind)
    return upsample_cam(cam, x.shape[-2:])[:, 0]
