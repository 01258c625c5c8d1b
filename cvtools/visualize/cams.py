"""The CAM family: one base class, :class:`CAM`; each method is a small subclass that says only how
it weighs the layer's activations (:meth:`CAM.get_cam_weights`, as pytorch-grad-cam's
``BaseCAM.get_cam_weights``). The base class runs the layer (a batched forward and backward, or
one forward without gradients when ``needs_gradients`` is False), applies ``relu(sum_c w * A)``,
then min-max, bilinear upsampling and min-max again (:func:`cvtools.visualize.cam.upsample_cam`;
pytorch-grad-cam's ``scale_cam_image`` with cv2's bilinear resize gives the same, up to its 1e-7
epsilons). A method whose map is not a weighted sum of channels overrides :meth:`CAM.cam_image`
(Eigen-CAM), as pytorch-grad-cam's ``get_cam_image``. The registry is
:data:`cvtools.visualize.methods.METHODS`.

- Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM, XGrad-CAM: the weight functions of
  :mod:`cvtools.visualize.cam` (formulas and references there).
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
- Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map.

HiResCAM, XGrad-CAM, Eigen-CAM, Score-CAM and Ablation-CAM equal pytorch-grad-cam's formulas at a
layer (tested against float64 recomputations); Grad-CAM equals captum's LayerGradCam pipeline. An
image's map never depends on its batch-mates: the per-channel passes are grouped per image.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from cvtools.visualize import cam as camlib
from cvtools.visualize.attribution import Attribution, guided_backprop, percentile_normalize
from cvtools.visualize.cam import LayerGradients, layer_activation, layer_gradients, upsample_cam
from cvtools.visualize.model import Target, resolve_class_indices


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


class CAM(Attribution):
    """A class activation map at ``layer``: ``relu(sum_c w_c * A_c)``, min-max scaled and upsampled.

    A subclass sets ``name`` (its command-line name, with an entry in ``catalog.METHOD_INFO``) and
    overrides :meth:`get_cam_weights`; set ``needs_gradients = False`` for a gradient-free method
    (``gradient`` is then None) and ``class_specific = False`` when the target does not matter.
    """

    needs_gradients = True
    class_specific = True

    def __init__(self, backbone, internal_batch_size=None, layer: Optional[str] = None):
        super().__init__(backbone, internal_batch_size)
        self.layer = layer or backbone.defaults.cam
        backbone.check_layers([self.layer])

    def describe(self):
        return f"layer {self.layer}"

    def get_cam_weights(self, x: torch.Tensor, lg: LayerGradients) -> torch.Tensor:
        """The weights of the layer's channels: N×C×1×1, or N×C×h×w for one weight per position.
        ``x``: the input batch; ``lg``: the layer's activation, gradient (None when
        ``needs_gradients`` is False), logits and each image's target class."""
        raise NotImplementedError

    def cam_image(self, activation: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The N×1×h×w map at the layer's resolution (after the ReLU)."""
        return camlib.weighted_activations(activation, weights)

    def layer_state(self, x: torch.Tensor, target: Target) -> LayerGradients:
        """One batched forward (and backward, if ``needs_gradients``) through ``layer``."""
        if self.needs_gradients:
            return layer_gradients(self.backbone, x, target, self.layer)
        activation, logits = layer_activation(self.backbone, x, self.layer)
        t = resolve_class_indices(target, logits) if self.class_specific else None
        return LayerGradients(activation, None, logits, t)

    def layer_map(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        """The N×1×h×w map at the layer's resolution (after the ReLU, before any normalisation)."""
        lg = self.layer_state(x, target)
        return self.cam_image(lg.activation, self.get_cam_weights(x, lg))

    def attribute(self, x, target=None):
        """N×1×H×W maps in [0, 1] (CAM methods are defined up to scale)."""
        return upsample_cam(self.layer_map(x, target), x.shape[-2:])

    def heatmap(self, attribution):
        return attribution[:, 0]


class GradCAM(CAM):
    """Grad-CAM (Selvaraju et al. 2017) at ``layer``, batched; see :mod:`cvtools.visualize.cam`."""

    name = "gradcam"

    def get_cam_weights(self, x, lg):
        return camlib.gradcam_weights(lg.activation, lg.gradient)


class GradCAMPlusPlus(CAM):
    """Grad-CAM++ (Chattopadhay et al. 2018) at ``layer``."""

    name = "gradcam++"

    def get_cam_weights(self, x, lg):
        return camlib.gradcampp_weights(lg.activation, lg.gradient)


class LayerCAM(CAM):
    """LayerCAM (Jiang et al. 2021) at ``layer``."""

    name = "layercam"

    def get_cam_weights(self, x, lg):
        return camlib.layercam_weights(lg.activation, lg.gradient)


class HiResCAM(CAM):
    """HiResCAM (Draelos & Carin 2020) at ``layer``: one batched forward and backward."""

    name = "hirescam"

    def get_cam_weights(self, x, lg):
        return camlib.hirescam_weights(lg.activation, lg.gradient)


class XGradCAM(CAM):
    """XGrad-CAM (Fu et al. 2020) at ``layer``: one batched forward and backward."""

    name = "xgradcam"

    def get_cam_weights(self, x, lg):
        return camlib.xgradcam_weights(lg.activation, lg.gradient)


class EigenCAM(CAM):
    """Eigen-CAM (Muhammad & Yeasin 2020) at ``layer``: one forward, a batched SVD; the same map
    whatever the target (the map is a projection, not a weighted sum: :meth:`cam_image`)."""

    name = "eigencam"
    needs_gradients = False
    class_specific = False

    def get_cam_weights(self, x, lg):
        return None

    def cam_image(self, activation, weights):
        return eigencam_map(activation)


class ScoreCAM(CAM):
    """Score-CAM (Wang et al. 2020) at ``layer``: one forward per channel of the layer,
    ``internal_batch_size`` of them per pass (default 64)."""

    name = "scorecam"
    needs_gradients = False

    def describe(self):
        return f"layer {self.layer}, a forward pass per channel"

    def get_cam_weights(self, x, lg):
        weights = scorecam_weights(self.backbone, x, lg.activation, lg.target, self.internal_batch_size or 64)
        return weights[:, :, None, None]


class AblationCAM(CAM):
    """Ablation-CAM (Desai & Ramaswamy 2020) at ``layer``: the layers after ``layer`` once per
    channel, ``internal_batch_size`` channels per pass (default 64)."""

    name = "ablationcam"
    needs_gradients = False

    def get_cam_weights(self, x, lg):
        y = lg.logits.gather(1, lg.target[:, None])
        drops = ablation_scores(self.backbone, x, lg.activation, lg.target, self.layer, lg.logits,
                                self.internal_batch_size or 64)
        return (drops / y)[:, :, None, None]


class GuidedGradCAM(GradCAM):
    """Guided backprop times the upsampled, normalised Grad-CAM map (Selvaraju et al. 2017).
    (captum multiplies by the raw map, nearest-upsampled; the normalised bilinear one keeps the
    guided detail smooth across CAM cells.)"""

    name = "guided-gradcam"

    def attribute(self, x, target=None):
        t = self._targets(x, target)
        return guided_backprop(self.backbone, x, t, shifts=2) * super().attribute(x, t)

    def heatmap(self, attribution):
        return percentile_normalize(attribution.abs().amax(dim=1))


#: The CAM methods in panel order (registered in :data:`cvtools.visualize.methods.METHODS`).
CAMS = (GradCAM, GradCAMPlusPlus, LayerCAM, GuidedGradCAM, HiResCAM, XGradCAM, EigenCAM, ScoreCAM, AblationCAM)
