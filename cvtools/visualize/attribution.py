"""Attribution methods: one class per method, each with one ``attribute(x, target)``.

Every method explains a backbone's logit for [0, 1] RGB images (N×3×H×W on the backbone's device)
and returns its raw attribution; ``heatmap(attribution)`` turns that into the N×H×W map in [0, 1]
that is drawn. captum does the work wherever it has the method (Saliency, IntegratedGradients,
InputXGradient, Occlusion); written here are what it lacks or gets wrong for these backbones:

- the CAM family is in :mod:`cvtools.visualize.cams` (one base class, a method per weighting);
- guided backprop: captum's GuidedBackprop only overrides ``nn.ReLU`` modules, so on
  EfficientNet-Lite (``nn.ReLU6``) and on GoogLeNet (``F.relu``) it silently returns plain
  gradients. Ours applies the guided rule at every ReLU-family op, module or functional;
- SmoothGrad: captum's NoiseTunnel draws its noise for the whole batch from the global RNG, so an
  image's map would depend on which other images share its batch. Ours adds the same seeded noise
  to every image (then captum's Saliency), so maps are reproducible and batch-independent (a folder
  sharded over GPUs gives the same files as one run).

Nothing here changes the model or the input, and every hook is removed, also after an error.
"""

from __future__ import annotations

import contextlib
import math
from typing import Optional, Union

import torch

from cvtools.errors import UsageError
from cvtools.visualize.catalog import METHOD_INFO
from cvtools.visualize.model import PixelModel, Target, predict, resolve_class_indices


def percentile_normalize(maps: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Scale each non-negative map (N×H×W) so its q-th quantile is 1, then clip to [0, 1].

    Pixel-level attributions are heavy-tailed: scaling by the maximum would let a few pixels turn
    the rest black. (kthvalue instead of torch.quantile, which refuses tensors over 16M values.)
    """
    flat = maps.reshape(maps.shape[0], -1)
    k = max(1, min(flat.shape[1], math.ceil(q * flat.shape[1])))
    top = flat.kthvalue(k, dim=1).values.clamp_min(torch.finfo(flat.dtype).tiny)
    top = torch.where(top > 0, top, flat.amax(dim=1).clamp_min(torch.finfo(flat.dtype).tiny))
    return (maps / top.view(-1, *([1] * (maps.dim() - 1)))).clamp(0, 1)


def signed_to_rgb(attribution: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """An N×3×H×W signed gradient as an image: 0.5 grey is zero, the q-th |quantile| is 0 or 1."""
    flat = attribution.abs().reshape(attribution.shape[0], -1)
    k = max(1, min(flat.shape[1], math.ceil(q * flat.shape[1])))
    top = flat.kthvalue(k, dim=1).values.clamp_min(1e-30).view(-1, 1, 1, 1)
    return (0.5 + 0.5 * attribution / top).clamp(0, 1)


def _leaf(x: torch.Tensor) -> torch.Tensor:
    """A new tensor object for captum to mark requires_grad on: the caller's tensor is untouched."""
    return x.detach().requires_grad_(True)


class Attribution:
    """Base class: a method bound to a backbone. Subclasses implement :meth:`attribute`."""

    name = ""  # the command-line name; title and help text are in catalog.METHOD_INFO

    def __init__(self, backbone, internal_batch_size: Optional[int] = None):
        self.backbone = backbone
        self.model = PixelModel(backbone)
        self.internal_batch_size = internal_batch_size

    @property
    def title(self) -> str:
        return METHOD_INFO[self.name].title

    @property
    def display(self) -> str:
        """``heatmap`` (drawn as a coloured overlay) or ``gradient`` (drawn as a signed RGB image)."""
        return "gradient" if METHOD_INFO[self.name].gradient_display else "heatmap"

    def describe(self) -> str:
        """Settings worth printing under the caption."""
        return ""

    def diagnostics(self):
        """Per-image facts about the last :meth:`attribute` call worth reporting (a list of dicts,
        JSON-ready), or None."""
        return None

    def attribute(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        raise NotImplementedError

    def heatmap(self, attribution: torch.Tensor) -> torch.Tensor:
        """Raw attribution -> N×H×W map in [0, 1] (largest absolute value over colour channels)."""
        return percentile_normalize(attribution.abs().amax(dim=1))

    def __call__(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        return self.heatmap(self.attribute(x, target))

    def _targets(self, x: torch.Tensor, target: Target) -> torch.Tensor:
        if isinstance(target, torch.Tensor) and target.dim() == 1 and len(target) == len(x):
            return target.to(x.device)
        if target is None or isinstance(target, str):
            return predict(self.backbone, x, target)[0]
        return resolve_class_indices(target, torch.empty(len(x), len(self.backbone.categories), device=x.device))

    def __repr__(self):
        return f"{type(self).__name__}({self.backbone.name})"


# --------------------------------------------------------------------------- gradient methods


class Saliency(Attribution):
    """The gradient of the class logit w.r.t. the pixels (Simonyan et al. 2014), via captum."""

    name = "saliency"

    def attribute(self, x, target=None):
        from captum.attr import Saliency as CaptumSaliency

        return CaptumSaliency(self.model).attribute(_leaf(x), target=self._targets(x, target), abs=False).detach()


class SmoothGrad(Attribution):
    """Saliency averaged over ``samples`` copies with Gaussian noise of std ``noise`` (pixel values
    0..1; Smilkov et al. 2017). The raw attribution is the mean signed gradient."""

    name = "smoothgrad"

    def __init__(self, backbone, internal_batch_size=None, samples: int = 32, noise: float = 0.15, seed: int = 0):
        super().__init__(backbone, internal_batch_size)
        if samples < 1:
            raise UsageError("smoothgrad needs at least 1 sample")
        self.samples, self.noise, self.seed = samples, noise, seed

    def describe(self):
        return f"{self.samples} samples, noise {self.noise:g}"

    def attribute(self, x, target=None):
        from captum.attr import Saliency as CaptumSaliency

        t = self._targets(x, target)
        n, s = len(x), self.samples
        # The same noise for every image, drawn on the CPU: maps do not depend on the batch or device.
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.randn((s,) + tuple(x.shape[1:]), generator=gen).mul_(self.noise).to(x.device)
        saliency = CaptumSaliency(self.model)
        total = torch.zeros_like(x)
        chunk = max(1, self.internal_batch_size or s)  # noisy copies per backward pass
        pairs = [(i, j) for i in range(n) for j in range(s)]
        for start in range(0, len(pairs), chunk):
            ii = torch.tensor([p[0] for p in pairs[start:start + chunk]], device=x.device)
            jj = torch.tensor([p[1] for p in pairs[start:start + chunk]], device=x.device)
            noisy = x.detach()[ii] + noise[jj]
            grads = saliency.attribute(noisy.requires_grad_(True), target=t[ii], abs=False).detach()
            total.index_add_(0, ii, grads)
        return total / s


#: Integrated gradients, ``--steps auto``: start here, double while an image's completeness gap
#: is over ``IG_TOLERANCE``, stop at ``IG_MAX_STEPS``. Measured on 8 imagenet50 photos
#: (EfficientNet-Lite0, 224 px, Gauss-Legendre): gap 2-17 % (median 7 %) at 50 steps, 1-3 % at 300.
IG_START_STEPS = 50
IG_MAX_STEPS = 400
IG_TOLERANCE = 0.05


class IntegratedGradients(Attribution):
    """Gradients integrated along the straight path from the mean-colour image (Sundararajan et
    al. 2017), via captum (Gauss-Legendre, ``steps`` points).

    The integral is a quadrature, so it can be off: the completeness gap
    ``|sum(attr) - (f(x) - f(baseline))| / |f(x) - f(baseline)|`` says by how much (0 for the
    exact integral). ``steps="auto"`` starts at ``IG_START_STEPS`` and doubles the steps of the
    images whose gap is over ``tolerance`` until it is under or ``max_steps`` is reached;
    :meth:`diagnostics` gives each image's steps, gap and whether it converged (``last_delta``
    keeps the absolute error, signed, as captum returns it).
    """

    name = "integrated-gradients"

    def __init__(self, backbone, internal_batch_size=None, steps: Union[int, str, None] = "auto",
                 max_steps: int = IG_MAX_STEPS, tolerance: float = IG_TOLERANCE):
        super().__init__(backbone, internal_batch_size)
        self.auto = steps is None or (isinstance(steps, str) and steps.strip().lower() == "auto")
        if self.auto:
            self.steps = IG_START_STEPS
        else:
            try:
                self.steps = int(steps)
            except (TypeError, ValueError):
                raise UsageError(f"steps must be auto or a number (got {steps!r})", param="steps") from None
            if self.steps < 2:
                raise UsageError(f"integrated gradients needs at least 2 steps (got {self.steps})")
        self.max_steps = max(self.steps, int(max_steps))
        self.tolerance = float(tolerance)
        self.last_delta = None  # completeness error of the last call, per image (signed, absolute)
        self.last_gap = None  # ... relative to |f(x) - f(baseline)|
        self.last_steps = None  # steps each image of the last call ended with

    def describe(self):
        if self.auto:
            return f"from the mean colour, steps doubled from {self.steps} until the completeness gap " \
                   f"< {self.tolerance:.0%} (at most {self.max_steps})"
        return f"{self.steps} steps from the mean colour"

    def baseline(self, x):
        """The backbone's mean colour: zero after normalisation, the most "no information" input."""
        mean = torch.tensor(self.backbone.preprocessing.mean, device=x.device, dtype=x.dtype)
        return mean.view(1, -1, 1, 1).expand_as(x)

    def _integrate(self, x, target, steps):
        from captum.attr import IntegratedGradients as CaptumIG

        attr, delta = CaptumIG(self.model).attribute(
            _leaf(x), baselines=self.baseline(x), target=target, n_steps=steps,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        return attr.detach(), delta.detach().to(x.device)

    def attribute(self, x, target=None):
        t = self._targets(x, target)
        with torch.no_grad():  # f(x) - f(baseline): what the attributions must add up to
            total = (self.model(x) - self.model(self.baseline(x))).gather(1, t.view(-1, 1))[:, 0]
        scale = total.abs().clamp_min(1e-6)
        steps = self.steps
        attr, delta = self._integrate(x, t, steps)
        used = torch.full((len(x),), steps, dtype=torch.long)
        gap = (delta.abs() / scale).cpu()
        while self.auto and steps < self.max_steps:
            todo = (gap > self.tolerance).nonzero()[:, 0]
            if len(todo) == 0:
                break
            steps = min(2 * steps, self.max_steps)
            idx = todo.to(x.device)
            more, more_delta = self._integrate(x[idx], t[idx], steps)
            attr[idx], delta[idx] = more, more_delta
            used[todo] = steps
            gap[todo] = (more_delta.abs() / scale[idx]).cpu()
        self.last_delta, self.last_gap, self.last_steps = delta, gap, used
        return attr

    def diagnostics(self):
        """Per image of the last call: steps, completeness gap (a fraction), converged."""
        if self.last_gap is None:
            return None
        return [{"steps": int(s), "completeness_gap": round(float(g), 5), "converged": bool(g <= self.tolerance)}
                for s, g in zip(self.last_steps, self.last_gap)]

    def heatmap(self, attribution):
        return percentile_normalize(attribution.sum(dim=1).abs())


def describe_diagnostics(d: dict, short: bool = False) -> str:
    """One image's integrated-gradients diagnostics as words (``short`` for a caption)."""
    gap = f"{d['completeness_gap']:.1%}"
    if short:
        return f"{d['steps']} steps · gap {gap}" + ("" if d["converged"] else " · NOT converged")
    text = f"{d['steps']} steps, completeness gap {gap}"
    return text if d["converged"] else text + f" (over {IG_TOLERANCE:.0%}: not converged; the map may be off, " \
                                              "give more steps)"


class InputXGradient(Attribution):
    """Pixels times their gradient (Shrikumar et al. 2016), via captum."""

    name = "input-x-gradient"

    def attribute(self, x, target=None):
        from captum.attr import InputXGradient as CaptumIXG

        return CaptumIXG(self.model).attribute(_leaf(x), target=self._targets(x, target)).detach()

    def heatmap(self, attribution):
        return percentile_normalize(attribution.sum(dim=1).abs())


class Occlusion(Attribution):
    """The logit drop when a mean-colour patch hides each region (Zeiler & Fergus 2014), via
    captum; ``window``/``stride`` in pixels (default 1/7 of the short side, half of it)."""

    name = "occlusion"

    def __init__(self, backbone, internal_batch_size=None, window: Optional[int] = None, stride: Optional[int] = None):
        super().__init__(backbone, internal_batch_size)
        self.window, self.stride = window, stride

    def geometry(self, size) -> tuple:
        """(window, stride) in pixels: by default a patch 1/7 of the short side, moved by half of it."""
        window = self.window or max(4, round(min(size) / 7))
        return window, self.stride or max(1, window // 2)

    def describe(self):
        return f"{self.window} px patches" if self.window else "patches 1/7 of the short side"

    def attribute(self, x, target=None):
        from captum.attr import Occlusion as CaptumOcclusion

        window, stride = self.geometry(x.shape[-2:])
        mean = torch.tensor(self.backbone.preprocessing.mean, device=x.device).view(1, -1, 1, 1).expand_as(x)
        per_eval = max(1, (self.internal_batch_size or 64) // len(x))
        with torch.no_grad():
            return CaptumOcclusion(self.model).attribute(
                x.detach(), sliding_window_shapes=(x.shape[1], window, window), strides=(x.shape[1], stride, stride),
                baselines=mean, target=self._targets(x, target), perturbations_per_eval=per_eval).detach()

    def heatmap(self, attribution):
        """Where hiding the region lowers the class score (the positive part), smoothed: captum's map
        is constant on stride-sized cells, so it is averaged per cell and upsampled bilinearly."""
        import torch.nn.functional as F

        _, stride = self.geometry(attribution.shape[-2:])
        m = attribution.mean(dim=1, keepdim=True).clamp_min(0)
        cells = F.avg_pool2d(m, stride, ceil_mode=True)
        m = F.interpolate(cells, size=attribution.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return m / m.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)


# --------------------------------------------------------------------------- guided backprop

_RELU_OPS = None
#: Activations that are not ReLUs, by op name: what a network without ReLUs is told it has instead.
OTHER_ACTIVATIONS = ("silu", "gelu", "hardswish", "mish", "elu", "selu", "celu", "leaky_relu", "prelu", "sigmoid",
                     "tanh", "softplus", "hardsigmoid")


def _relu_ops():
    global _RELU_OPS
    if _RELU_OPS is None:
        import torch.nn.functional as F

        aten = torch.ops.aten
        # The aten overloads are what a torch.export program (.pt2) calls: it has no nn.ReLU modules
        # and no F.relu, only these ops, which a torch-function mode sees as well.
        _RELU_OPS = {F.relu, F.relu_, F.relu6, F.hardtanh, F.hardtanh_, torch.relu, torch.relu_,
                     torch.Tensor.relu, torch.Tensor.relu_, aten.relu.default, aten.relu_.default,
                     aten.relu6.default, aten.hardtanh.default, aten.hardtanh_.default}
    return _RELU_OPS


def op_name(func) -> str:
    """'silu' for F.silu, torch.ops.aten.silu_.default and the like."""
    return (getattr(func, "_opname", None) or getattr(func, "__name__", "")).rstrip("_")


@contextlib.contextmanager
def guided_relus():
    """Inside this context every ReLU-family op (``nn.ReLU``, ``nn.ReLU6``, ``F.relu``, ...) passes
    back only positive gradients: the guided-backpropagation rule of Springenberg et al. 2015,
    ``R_in = [x > 0] * relu(R_out)`` (for ReLU6 also ``[x < 6]``, from the op's own backward).

    A torch-function mode sees the ops themselves, so modules that are reused or functional relus
    are handled, and so are a torch.export program's aten ops; tensor hooks live on the graph, so
    nothing is left on the model. Yields a counter of the ops that were guided, then the names of
    the other activations seen (for saying what a network without ReLUs has instead).
    """
    from torch.overrides import TorchFunctionMode

    ops = _relu_ops()
    count = [0, set()]

    def positive(grad):
        return grad.clamp_min(0)

    class Guided(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func in ops and isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(positive)
                count[0] += 1
            elif op_name(func) in OTHER_ACTIVATIONS:
                count[1].add(op_name(func))
            return out

    with Guided():
        yield count


def guided_backprop(backbone, x: torch.Tensor, target: torch.Tensor, shifts: int = 1) -> torch.Tensor:
    """Guided-backprop gradients (N×3×H×W) of each image's ``target`` logit.

    ``shifts`` > 1 averages the gradients of the image placed at each of the ``shifts``²
    sub-pixel phases of the stride grid (edge-padded by up to ``shifts`` pixels, then cropped
    back): see :class:`GuidedBackprop` for why.
    """
    import torch.nn.functional as F

    model = PixelModel(backbone)
    n, _, h, w = x.shape
    if shifts > 1:  # every phase in one batch: N·shifts² images of (H + shifts)×(W + shifts)
        phases = [(dy, dx) for dy in range(shifts) for dx in range(shifts)]
        inp = torch.cat([F.pad(x.detach(), (dx, shifts - dx, dy, shifts - dy), mode="replicate")
                         for dy, dx in phases])
        target = target.repeat(len(phases))
    else:
        inp = x.detach().clone()
    inp.requires_grad_(True)
    with torch.enable_grad(), guided_relus() as guided:
        logits = model(inp)
        selected = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
        (grad,) = torch.autograd.grad(selected, inp)
    if guided[0] == 0:
        raise UsageError(_no_relus(backbone, guided[1]))
    if shifts > 1:
        grad = torch.stack([grad[k * n:(k + 1) * n, :, dy:dy + h, dx:dx + w] for k, (dy, dx) in enumerate(phases)])
        grad = grad.mean(dim=0)
    return grad


def _no_relus(backbone, others) -> str:
    """Why the guided rule found no ReLU to act on, in one line."""
    if any(isinstance(m, torch.jit.ScriptModule) for m in backbone.model.modules()):
        return (f"{backbone.name}: TorchScript runs its ReLUs inside its own interpreter, where guided backprop "
                "cannot change their backward; save the network as a state dict or a .pt2 program (torch.export)")
    has = f" (its activations: {', '.join(sorted(others))})" if others else ""
    return (f"guided backprop needs ReLU activations and {backbone.name} has none{has}; "
            "use saliency or smoothgrad, or a ReLU network")


def guided_problem(backbone) -> Optional[str]:
    """Why guided backprop cannot run on ``backbone`` (it has no ReLU the guided rule can reach),
    or None; found by one forward of a small random image, remembered on the backbone."""
    known = backbone.__dict__.get("_guided_problem", False)
    if known is not False:
        return known
    side = max(32, int(getattr(backbone, "min_size", 32) or 32))
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(backbone.device)
    try:
        with torch.enable_grad(), guided_relus() as guided:
            PixelModel(backbone)(x.requires_grad_(True))  # the eager module, as guided_backprop runs it
    except Exception:  # the real run will say what is wrong
        return None
    problem = None if guided[0] else _no_relus(backbone, guided[1])
    backbone.__dict__["_guided_problem"] = problem
    return problem


class GuidedBackprop(Attribution):
    """Guided backpropagation (Springenberg et al. 2015) at every ReLU-family op; see
    :func:`guided_relus`.

    The raw rule draws a fine grid over the picture. Its cause is the first stride-2
    convolution (the stem): its backward pass is a stride-2 transposed convolution, so input
    pixels of even and odd rows and columns collect their gradient from different kernel taps
    and different numbers of outputs; plain gradients partly cancel the difference, but the
    guided rule passes positive signals only, so it adds up to a period-2 pattern. Measured on
    EfficientNet-Lite0 at 224 px (chelsea, coffee): 1.3-1.8 % of the map's variance sits in the
    period-2 phase pattern (0.2-0.6 % for plain gradients). It is inherent to one pass of the
    rule, not a bug; averaging the passes at the ``shifts``² = 4 sub-pixel placements of the
    image on that grid removes it (0.0 %) and leaves the edges as sharp (4 times the cost).
    ``shifts=1`` is the textbook single pass (what captum computes on ReLU networks).
    """

    name = "guided-backprop"

    def __init__(self, backbone, internal_batch_size=None, shifts: int = 2):
        super().__init__(backbone, internal_batch_size)
        self.shifts = max(1, int(shifts))

    def describe(self):
        return f"averaged over {self.shifts}x{self.shifts} grid phases" if self.shifts > 1 else ""

    def attribute(self, x, target=None):
        return guided_backprop(self.backbone, x, self._targets(x, target), self.shifts)


def __getattr__(name):
    """``METHODS`` and ``make_method`` moved to :mod:`cvtools.visualize.methods` (which imports this
    module, so they cannot be imported here); the old names still work."""
    if name in ("METHODS", "make_method"):
        from cvtools.visualize import methods

        return getattr(methods, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
