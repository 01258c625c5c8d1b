"""More CAM methods, the ones people look for in pytorch-grad-cam, batched on the device.

Each equals pytorch-grad-cam's formula at a layer (tested against float64 recomputations):

- HiResCAM (Draelos & Carin 2020): ``relu(sum_c grad * A)``, the gradient kept per position (the
  map is then a faithful account of the logit for a network ending in pooling and a linear layer).
- XGrad-CAM (Fu et al. 2020): weights ``sum_hw grad * A / (sum_hw A + 1e-7)``.
- Eigen-CAM (Muhammad & Yeasin 2020): the activations (positions × channels, each channel
  centred) projected on their first right singular vector. Class-agnostic, no gradients. The SVD
  fixes the vector only up to sign (pytorch-grad-cam keeps whatever LAPACK returns); here the
  sign makes the projection correlate positively with the total activation at each position.
- Score-CAM (Wang et al. 2020): the input is masked by each channel (upsampled bilinearly with
  aligned corners, scaled to [0, 1]) in the network's normalised space, so a masked-out pixel is
  the mean colour; channel weights are the softmax over channels of the masked inputs' target
  logits. One forward pass per channel: ``internal_batch_size`` masked copies per pass.
- Ablation-CAM (Desai & Ramaswamy 2020): weights ``(y - y_c) / y`` where ``y_c`` is the target
  logit with channel c of the layer set to 0. Only the part of the network after the layer is
  re-run for the ablated copies (the layer's output is replaced by a hook; when the part before
  the layer's output would not broadcast, the whole network runs once per copy instead, as in
  pytorch-grad-cam). pytorch-grad-cam ablates to 0 as the paper does when the layer's minimum is
  0 (after a ReLU: every backbone's default CAM layer) and to ``min - 1e7`` otherwise.

All return N×1×H×W maps in [0, 1] at the input's size: ReLU, min-max, bilinear upsampling and
min-max again, as :func:`cvtools.visualize.cam.upsample_cam` (pytorch-grad-cam's
``scale_cam_image`` with cv2's bilinear resize gives the same, up to its 1e-7 epsilons). An
image's map never depends on its batch-mates: the per-channel passes are grouped per image.
"""

from __future__ import annotations

from typing import Dict, Tuple, Type

import torch
import torch.nn.functional as F

from cvtools.errors import UsageError
from cvtools.visualize.attribution import _CAM, METHODS, Attribution
from cvtools.visualize.cam import layer_gradients, upsample_cam
from cvtools.visualize.model import Target, resolve_class_indices


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


def hirescam_map(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """HiResCAM at the layer's resolution (N×1×h×w, after the ReLU)."""
    return (gradient.float() * activation.float()).sum(dim=1, keepdim=True).clamp_min(0)


def xgradcam_map(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM at the layer's resolution (N×1×h×w, after the ReLU); pytorch-grad-cam's 1e-7."""
    a, g = activation.float(), gradient.float()
    weights = (g * a).sum(dim=(2, 3), keepdim=True) / (a.sum(dim=(2, 3), keepdim=True) + 1e-7)
    return (weights * a).sum(dim=1, keepdim=True).clamp_min(0)


def eigencam_map(activation: torch.Tensor) -> torch.Tensor:
    """Eigen-CAM at the layer's resolution (N×1×h×w, after the ReLU): the centred activations'
    projection on their first principal direction, signed to agree with the total activation."""
    a = activation.float().nan_to_num(0.0)
    n, c, h, w = a.shape
    x = a.flatten(2).transpose(1, 2)  # N × positions × channels
    x = x - x.mean(dim=1, keepdim=True)
    v = torch.linalg.svd(x, full_matrices=False).Vh[:, 0, :]  # N × C
    projection = (x @ v[:, :, None])[:, :, 0]  # N × positions
    sign = torch.where((projection * x.sum(dim=2)).sum(dim=1, keepdim=True) < 0, -1.0, 1.0)
    return (sign * projection).view(n, 1, h, w).clamp_min(0)


def _chunks(count: int, size: int):
    for start in range(0, count, size):
        yield start, min(count, start + size)


@torch.no_grad()
def scorecam_weights(backbone, x: torch.Tensor, activation: torch.Tensor, target: torch.Tensor,
                     batch_size: int = 64) -> torch.Tensor:
    """Score-CAM's channel weights (N×C): softmax over channels of the target logit of the input
    masked by each upsampled, [0, 1]-scaled channel."""
    n, c = activation.shape[:2]
    prepared = backbone.prepare(x)
    scores = torch.empty(n, c, device=x.device)
    for i in range(n):
        for s, e in _chunks(c, batch_size):
            up = F.interpolate(activation[i, s:e, None].float(), size=x.shape[-2:], mode="bilinear",
                               align_corners=True)
            lo = up.amin(dim=(2, 3), keepdim=True)
            hi = up.amax(dim=(2, 3), keepdim=True)
            mask = (up - lo) / (hi - lo + 1e-8)
            masked = (prepared[i:i + 1] * mask.to(prepared.dtype))
            if backbone.channels_last:
                masked = masked.contiguous(memory_format=torch.channels_last)
            scores[i, s:e] = backbone.model(masked).float()[:, target[i]]
    return scores.softmax(dim=1)


class _Replace:
    """A forward hook that swaps the layer's output for ``self.value`` (when set)."""

    def __init__(self):
        self.value = None

    def __call__(self, module, inputs, output):
        return output if self.value is None else self.value


@torch.no_grad()
def ablation_scores(backbone, x: torch.Tensor, activation: torch.Tensor, target: torch.Tensor, layer: str,
                    reference: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Drop of each image's target logit (N×C) when channel c of ``layer`` is set to 0.

    Each pass feeds one image and replaces the layer's output by ``k`` copies of its activation,
    channel ``c`` zeroed in copy ``c``, plus one untouched copy: only the layers after ``layer``
    run on the copies. The untouched copy's logit is the reference for the drop (so the drop is
    not blurred by batch-size dependent rounding) and checks the shortcut against ``reference``
    (the N×classes logits of a normal pass): when a part of the network before the layer's
    output is combined with it and does not broadcast or gives other logits, the input is
    repeated instead, the whole network per copy.
    """
    n, c = activation.shape[:2]
    module = backbone.module(layer)
    prepared = backbone.prepare(x)
    replace = _Replace()
    drops = torch.empty(n, c, device=x.device)
    shortcut = True
    handle = module.register_forward_hook(replace)
    try:
        for i in range(n):
            for s, e in _chunks(c, batch_size):
                k = e - s
                copies = activation[i:i + 1].repeat(k + 1, 1, 1, 1)
                copies[torch.arange(k, device=x.device), torch.arange(s, e, device=x.device)] = 0
                replace.value = copies
                logits = None
                if shortcut:
                    try:
                        logits = backbone.model(prepared[i:i + 1]).float()
                        ref = reference[i]
                        if logits.shape != (k + 1, ref.numel()) or \
                                (logits[-1] - ref).abs().max() > 1e-2 * (1 + ref.abs().max()):
                            logits = None
                    except RuntimeError:
                        logits = None
                    if logits is None:
                        shortcut = False
                if logits is None:
                    layout = torch.channels_last if backbone.channels_last else torch.contiguous_format
                    repeated = prepared[i:i + 1].expand(k + 1, -1, -1, -1).contiguous(memory_format=layout)
                    logits = backbone.model(repeated).float()
                y = logits[:, target[i]]
                drops[i, s:e] = y[-1] - y[:-1]
    finally:
        replace.value = None
        handle.remove()
    return drops


class _ExtraCAM(_CAM):
    """A CAM whose map at the layer comes from :meth:`layer_map` (N×1×h×w, after the ReLU)."""

    def layer_map(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        raise NotImplementedError

    def attribute(self, x, target=None):
        """N×1×H×W maps in [0, 1] (CAM methods are defined up to scale)."""
        return upsample_cam(self.layer_map(x, target), x.shape[-2:])


class HiResCAM(_ExtraCAM):
    """HiResCAM (Draelos & Carin 2020) at ``layer``: one batched forward and backward."""

    name = "hirescam"

    def layer_map(self, x, target):
        lg = layer_gradients(self.backbone, x, target, self.layer)
        return hirescam_map(lg.activation, lg.gradient)


class XGradCAM(_ExtraCAM):
    """XGrad-CAM (Fu et al. 2020) at ``layer``: one batched forward and backward."""

    name = "xgradcam"

    def layer_map(self, x, target):
        lg = layer_gradients(self.backbone, x, target, self.layer)
        return xgradcam_map(lg.activation, lg.gradient)


class EigenCAM(_ExtraCAM):
    """Eigen-CAM (Muhammad & Yeasin 2020) at ``layer``: one forward, a batched SVD; the same map
    whatever the target."""

    name = "eigencam"

    def layer_map(self, x, target):
        activation, _ = layer_activation(self.backbone, x, self.layer)
        return eigencam_map(activation)


class ScoreCAM(_ExtraCAM):
    """Score-CAM (Wang et al. 2020) at ``layer``: one forward per channel of the layer,
    ``internal_batch_size`` of them per pass (default 64)."""

    name = "scorecam"

    def describe(self):
        return f"layer {self.layer}, a forward pass per channel"

    def layer_map(self, x, target):
        activation, logits = layer_activation(self.backbone, x, self.layer)
        t = resolve_class_indices(target, logits)
        weights = scorecam_weights(self.backbone, x, activation, t, self.internal_batch_size or 64)
        return (weights[:, :, None, None] * activation.float()).sum(dim=1, keepdim=True).clamp_min(0)


class AblationCAM(_ExtraCAM):
    """Ablation-CAM (Desai & Ramaswamy 2020) at ``layer``: the layers after ``layer`` once per
    channel, ``internal_batch_size`` channels per pass (default 64)."""

    name = "ablationcam"

    def layer_map(self, x, target):
        activation, logits = layer_activation(self.backbone, x, self.layer)
        t = resolve_class_indices(target, logits)
        y = logits.gather(1, t[:, None])
        drops = ablation_scores(self.backbone, x, activation, t, self.layer, logits,
                                self.internal_batch_size or 64)
        weights = drops / y
        return (weights[:, :, None, None] * activation.float()).sum(dim=1, keepdim=True).clamp_min(0)


#: The methods of this module by command-line name, registered in ``attribution.METHODS``.
EXTRA_CAMS: Dict[str, Type[Attribution]] = {
    cls.name: cls for cls in (HiResCAM, XGradCAM, EigenCAM, ScoreCAM, AblationCAM)
}
METHODS.update(EXTRA_CAMS)
