"""Your own model, in every command (issue #27): the networks practitioners bring, as a
:class:`~cvtools.backbones.base.Backbone` that explain, dream and visualize use like a registered one.

>>> bb = load_user_model("finetuned.pth", architecture="resnet18", classes="labels.txt")
>>> bb = load_user_model("model.pt2")                       # a torch.export program
>>> bb(x); bb.features(x, [bb.defaults.cam])                # logits; N×C×h×w taps

What a model can be:

- a **state dict** (.pth/.pt via ``torch.load(weights_only=True)``, or .safetensors) with an
  ``architecture``: a torchvision classifier name, ``"timm:NAME"`` (when timm is installed), or
  a callable returning the ``nn.Module``. The head's class count is read from the checkpoint
  (the head weight's first dimension), so a fine-tuned 12-class resnet18 loads as one. Shapes are
  compared with the architecture before any weight is copied (safetensors: from the header;
  PyTorch zips: memory-mapped), and a mismatch is one line naming the file.
- a **torch.export program** (.pt2): unflattened (``torch.export.unflatten``) so its submodules
  exist again and their outputs can be tapped by hooks. Loading one is not like loading data:
  torch's loader runs text from the file (``exec`` of its guards, ``sympify`` of its shape
  expressions, pickles for some tensors), so the archive is checked first (:func:`check_program`)
  and anything but plain tensors, aten operators and arithmetic shape expressions is refused.
- a **TorchScript** file: it runs, but its submodules live inside TorchScript's interpreter, where
  Python hooks cannot reach (``register_forward_hook`` raises on a loaded ScriptModule): logits
  and input gradients only (saliency, integrated gradients, occlusion), no layers.
- a pickled whole module (``torch.save(model)``) is Python code, not data: refused with how to
  convert it, unless ``trust_pickle=True`` says the file is the caller's own.
- an ``nn.Module`` already built (the Python API): copied, then treated as above.

Then every network goes through the same steps: a fixed input size found by a trial forward
(inputs are then resized to it inside the model, so any photo size works), one probe forward
that lists every tappable layer with its output shape and how it reads as a map (token sequences
and channels-last maps through :mod:`cvtools.backbones.tokens`), a backward that finds the last
layer whose positions reach the logits (the CAM default), BatchNorm folding where a convolution
precedes it, and the device, precision and layout steps :func:`cvtools.backbones.load_backbone`
uses. Multi-label (sigmoid) heads: ``multi_label=True`` reads each output's own probability.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from cvtools.backbones.registry import IMAGENET_MEAN, IMAGENET_STD, LayerDefaults, Preprocessing
from cvtools.errors import UsageError, WeightsError, did_you_mean, first_line, safe_path

#: Keys under which training scripts nest the state dict in a checkpoint, in order of preference.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
#: Prefixes wrappers add to every key, nested in any order (Lightning around DDP saves
#: ``model.module.conv1.weight``): DataParallel/DDP, torch.compile, and the attribute a training
#: module (Lightning's and most scripts') keeps the network under.
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "net.", "network.", "backbone.")
#: Checkpoint entries that name the classes.
CLASS_NAME_KEYS = ("class_names", "classes", "label_names", "labels")
#: A class-names file larger than this is not one.
MAX_CLASSES_FILE = 16 << 20
#: TorchScript deflates its code entries: what they may unpack to, at most.
MAX_TORCHSCRIPT_CODE = 64 << 20
#: Input sizes tried, in order, for a network whose size nothing states (a TorchScript file, a
#: module without torchvision's ``image_size`` or timm's ``patch_embed.img_size``).
TRIAL_SIZES = (224, 32, 64, 96, 128, 256, 299, 384)


@dataclass
class Loaded:
    """A network as read from its source, before the shared steps."""

    network: nn.Module
    name: str  # shown in messages: the file name, or the module's class
    description: str  # what was loaded, for ``Backbone.weights_desc``
    kind: str  # "state dict", "module", "TorchScript", "exported program"
    class_names: Optional[list] = None  # from the checkpoint
    preprocessing: Optional[Preprocessing] = None  # from the architecture's metadata
    fixed_size: Optional[Tuple[int, int]] = None  # known without a trial (an exported program's shapes)
    one_at_a_time: bool = False  # a program exported for batches of 1 whose graph runs on no other batch
    min_size: int = 32
    meta: dict = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)  # told through on_note once loaded (keys left out)


# ====================================================================== the entry point

def load_user_model(
    model: Union[str, Path, nn.Module],
    architecture: Union[str, Callable[[], nn.Module], None] = None,
    *,
    classes: Union[str, Path, Sequence[str], None] = None,
    input_size: Optional[int] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    architecture_kwargs: Optional[dict] = None,
    trust_pickle: bool = False,
    multi_label: bool = False,
    device: str = "auto",
    fuse: bool = True,
    precision: str = "auto",
    channels_last: Optional[bool] = None,
    compile: bool = False,
    tune: Optional[bool] = None,
    on_note: Optional[Callable[[str], None]] = None,
):
    """A frozen :class:`~cvtools.backbones.base.Backbone` for a model file or module.

    model: a state dict (.pth/.pt/.safetensors; needs ``architecture``), a TorchScript file, a
        torch.export program (.pt2), or an ``nn.Module``.
    architecture: for a state dict: a torchvision classifier (``"resnet18"``), ``"timm:NAME"``,
        or a callable returning the module; ``architecture_kwargs`` go to its constructor.
    classes: class names: a .txt file (one per line), a .json list or {index: name}, or a list;
        by default the checkpoint's own (``class_names`` next to its state dict, or a
        ``class_names`` extra file of a TorchScript/.pt2), else ``class 0`` ... ``class K-1``.
    input_size, mean, std: the evaluation crop and normalisation; by default the architecture's
        (torchvision's weights metadata, timm's data config), else 224 and ImageNet's statistics.
    trust_pickle: load a pickled whole module (``torch.save(model)``), which runs the code it
        names. Only for a file you made yourself.
    multi_label: the head's outputs are independent (sigmoid, multi-label: an X-ray may show two
        findings): each class's probability is its own sigmoid instead of a softmax share.
    device, fuse, precision, channels_last, compile, tune: as :func:`cvtools.backbones.load_backbone`;
        a TorchScript or exported program keeps fp32 under ``precision="auto"`` and channels-first
        (their graphs fix dtypes and layouts), and is not folded.
    on_note: takes a one-line note (an ``input_size`` a fixed-size program ignores); without it,
        the note is a Python warning.
    """
    from cvtools.backbones import freeze_and_fuse, place_model, resolve_device, resolve_precision
    from cvtools.backbones.base import Backbone

    loaded = _load_source(model, architecture, architecture_kwargs or {}, trust_pickle)
    for message in loaded.notes:
        send_note(on_note, message)
    preprocessing = _preprocessing(loaded, input_size, mean, std, on_note)
    size = (preprocessing.crop_size, preprocessing.crop_size)
    wrapper = UserNetwork(loaded.network, loaded.fixed_size, loaded.one_at_a_time)
    is_program = loaded.kind in ("TorchScript", "exported program")
    if input_size is None and loaded.preprocessing is None and loaded.fixed_size is None:
        size = _input_size(wrapper, loaded.name)
        preprocessing.resize_size = round(size[0] * preprocessing.resize_size / preprocessing.crop_size)
        preprocessing.crop_size = size[0]
    fused, fast_path = freeze_and_fuse(wrapper, fuse and not is_program, size)
    if is_program:
        fast_path = f"nothing folded ({loaded.kind}: its graph is fixed)" + loaded.meta.get("batch", "")
    probe = probe_network(wrapper, size, loaded.name, loaded.meta.get("note", ""))
    if wrapper.fixed_size is not None:
        preprocessing.crop_size = wrapper.fixed_size[0]
        fast_path += f"; inputs resized to {wrapper.fixed_size[1]}x{wrapper.fixed_size[0]} (a fixed-size network)"
    categories = _class_names(classes, loaded.class_names, probe.classes, loaded.name)

    dev = resolve_device(device)
    dtype = torch.float32 if is_program and precision in (None, "auto") else resolve_precision(precision, dev)
    if is_program and channels_last is None:
        channels_last = False
    wrapper, channels_last, compiled = place_model(wrapper, dev, dtype, channels_last, tune, compile)
    bb = Backbone(
        name=loaded.name, model=wrapper, preprocessing=preprocessing,
        layer_paths={info.name: f"net.{info.name}" for info in probe.layers},
        defaults=probe.defaults, categories=categories, device=dev, dtype=dtype, channels_last=channels_last,
        fused=fused, weights_desc=loaded.description, min_size=min(loaded.min_size, size[0]), compiled=compiled,
        layer_views=dict(probe.views), fast_path=fast_path, layers_note=probe.note, multi_label=bool(multi_label),
        tune=bool(tune),
    )
    bb._layers = list(probe.layers)
    return bb


class UserNetwork(nn.Module):
    """The user's network behind the Backbone: resizes inputs to a fixed-size network's one size
    (bilinear, antialiased when shrinking; differentiable, so input gradients flow) and remembers
    the size it ran at, from which token layers find their patch grid. ``one_at_a_time``: a
    program exported for batches of one image, given a batch one image per call."""

    def __init__(self, net: nn.Module, fixed_size: Optional[Tuple[int, int]] = None, one_at_a_time: bool = False):
        super().__init__()
        self.net = net
        self.fixed_size = fixed_size
        self.one_at_a_time = one_at_a_time
        self.input_size: Tuple[int, int] = fixed_size or (224, 224)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed_size is not None and tuple(x.shape[-2:]) != self.fixed_size:
            shrink = x.shape[-2] > self.fixed_size[0] or x.shape[-1] > self.fixed_size[1]
            x = F.interpolate(x, size=self.fixed_size, mode="bilinear", align_corners=False, antialias=shrink)
        self.input_size = (int(x.shape[-2]), int(x.shape[-1]))
        if self.one_at_a_time and x.shape[0] > 1:
            return torch.cat([self.net(image) for image in x.split(1)])
        return self.net(x)


# ====================================================================== sources

def _load_source(model, architecture, kwargs: dict, trust_pickle: bool) -> Loaded:
    if isinstance(model, nn.Module):
        if isinstance(model, torch.jit.ScriptModule):
            raise UsageError("model is a ScriptModule: pass its file (torch.jit.save) instead", param="model")
        name = type(model).__name__
        return Loaded(copy.deepcopy(model), name, f"module {name} (given)", "module")
    if not isinstance(model, (str, Path)):
        raise UsageError(f"model must be a file path or an nn.Module, not {type(model).__name__}", param="model")
    path = Path(model)
    kind = _file_kind(path)
    if kind == "exported program":
        return _load_program(path)
    if kind == "TorchScript":
        return _load_torchscript(path)
    checkpoint = _read_checkpoint(path, kind, trust_pickle)
    if isinstance(checkpoint, nn.Module):
        name = type(checkpoint).__name__
        return Loaded(checkpoint, path.name, f"pickled module {name} from {path} (trust_pickle=True)", "module")
    if architecture is None:
        raise UsageError(f"{safe_path(path)}: holds a state dict (weights only); pass architecture=NAME "
                         "(a torchvision classifier such as resnet18, timm:NAME, or a function building the "
                         "module) to say which network they belong to", param="architecture")
    return _build_from_state(path, checkpoint, architecture, kwargs)


def _file_kind(path: Path) -> str:
    """'safetensors', 'zip' (torch.save), 'pickle' (legacy torch.save), 'TorchScript' or 'exported
    program', by content."""
    from cvtools.weights import _check_readable, sniffed_format

    _check_readable(path, "model file")
    kind = sniffed_format(path, "model file")
    if kind == "unknown":
        raise WeightsError(f"{safe_path(path)}: not a model file (expected a state dict as .pth/.pt/.safetensors, "
                           "a TorchScript file or a torch.export .pt2 program)")
    if kind != "zip":
        return kind
    names = _zip_names(path)
    rest = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "archive_format" in rest or any(n.startswith("models/") for n in rest):
        return "exported program"
    if "constants.pkl" in rest or any(n.startswith("code/") for n in rest):
        return "TorchScript"
    return "zip"  # torch.save


def _zip_names(path: Path) -> List[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise WeightsError(f"{safe_path(path)}: truncated or damaged model file (its zip archive cannot be read)") \
            from None


# ---------------------------------------------------------------------- state dicts

@dataclass
class Checkpoint:
    """A state dict's key -> shape (known before any weight is read), how to get its tensors,
    and the metadata saved beside it."""

    shapes: Dict[str, Tuple[int, ...]]
    load: Callable[[], Dict[str, torch.Tensor]]
    meta: dict


def _read_checkpoint(path: Path, kind: str, trust_pickle: bool):
    """A :class:`Checkpoint` from a safetensors file (shapes from its header) or a torch.save
    checkpoint (memory-mapped); a pickled whole module comes back as the module
    (``trust_pickle``) or is refused."""
    if kind == "safetensors":
        from cvtools.weights import load_state_dict_file, read_safetensors_header

        header = read_safetensors_header(path)
        _check_safetensors_sizes(header, path)
        meta = {k: _json_or_text(v) for k, v in header.get("__metadata__", {}).items()}
        shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
        return Checkpoint(shapes, lambda: load_state_dict_file(path), meta)
    if kind == "zip":
        from cvtools.weights import check_torch_zip

        check_torch_zip(path)
    obj = _torch_load(path, kind, trust_pickle)
    if trust_pickle and isinstance(obj, dict) and isinstance(obj.get("model"), nn.Module):
        obj = obj["model"]
    if isinstance(obj, nn.Module):
        return obj
    state, meta = _split_checkpoint(obj, path)
    return Checkpoint({k: tuple(v.shape) for k, v in state.items()}, lambda: state, meta)


#: Bytes per element of safetensors' dtypes.
_SAFETENSORS_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                      "U16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def _check_safetensors_sizes(header: dict, path: Path) -> None:
    """Each shape must describe exactly the bytes its entry spans: the shapes are used (a head of
    N classes is built) before the tensors are read, so a header claiming a 10⁹-row head over a
    few bytes must fail here, not in an allocation."""
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"][:2]
        width = _SAFETENSORS_BYTES.get(info.get("dtype"))
        if width is None or math.prod(info["shape"]) * width != end - begin:
            raise WeightsError(f"{safe_path(path)}: damaged safetensors file (entry {safe_path(repr(name))}: its "
                               "shape and type do not match its data)")


def _torch_load(path: Path, kind: str, trust_pickle: bool):
    import argparse
    import pickle

    if trust_pickle:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise WeightsError(f"{safe_path(path)}: cannot be unpickled ({first_line(exc, 160)})") from None
    # argparse.Namespace: the training arguments timm's (and many scripts') checkpoints carry;
    # it holds values only. Memory-mapped: shapes are checked before any weight is read.
    allow = getattr(torch.serialization, "safe_globals", None)
    try:
        with warnings.catch_warnings(), (allow([argparse.Namespace]) if allow else contextlib.nullcontext()):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except MemoryError:
        raise WeightsError(f"{safe_path(path)}: too large to load in the memory available") from None
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{safe_path(path)}: {_refusal(path, kind, exc)}",
                           param=("trust_pickle", "architecture")) from None
    except Exception as exc:
        raise WeightsError(f"{safe_path(path)}: not a loadable checkpoint (truncated or damaged?) "
                           f"({first_line(exc, 160)})") from None


def _refusal(path: Path, kind: str, exc: Exception) -> str:
    """Why a pickle was refused: a whole module (what to do instead), or any other object."""
    names = _pickle_globals(path) if kind == "zip" else []
    modules = [n for n in names if n.startswith(("torch.nn.modules.", "torchvision.models.", "timm.models."))]
    classes = [n for n in names if not n.startswith(("torch.", "collections.", "builtins.", "_codecs."))]
    if modules or (classes and any(n.startswith("torch.nn.") for n in names)):
        shown = (classes or modules)[0]
        return (f"is a pickled whole module ({shown}), which runs code when loaded: refused. Where it was made, "
                "save its weights, torch.save(model.state_dict(), 'w.pth') (then pass architecture=NAME), or a "
                f"program, torch.export.save({DYNAMIC_BATCH_EXPORT}, 'm.pt2') ({EXAMPLE_BATCH}); "
                "or pass trust_pickle=True for a file you made")
    what = f" ({classes[0]})" if classes else ""
    return (f"refused: the file asks to create Python objects{what} beyond tensors, and loading it could run code "
            f"({first_line(exc, 80)}); pass trust_pickle=True only for a file you made yourself")


def _pickle_globals(path: Path) -> List[str]:
    """The 'module.name' globals a torch.save zip's pickle names, read without unpickling."""
    import pickletools

    try:
        with zipfile.ZipFile(path) as z:
            entry = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            data = z.read(entry) if entry else b""
        names, strings = [], []
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings = (strings + [arg])[-2:]
            elif op.name == "STACK_GLOBAL" and len(strings) == 2:
                names.append(".".join(strings))
            elif op.name == "GLOBAL":
                names.append(arg.replace(" ", "."))
        return names
    except Exception:  # a damaged pickle: the caller's message stands without the names
        return []


def _split_checkpoint(obj, path: Path):
    """(state dict, metadata) from what torch.load returned: a bare state dict, or a training
    checkpoint with the state dict under one of :data:`STATE_DICT_KEYS` and metadata beside it."""
    if not isinstance(obj, dict):
        raise WeightsError(f"{safe_path(path)}: holds a {type(obj).__name__}, not a state dict of tensors")
    meta = {k: v for k, v in obj.items() if not isinstance(v, (torch.Tensor, dict)) or k == "pretrained_cfg"}
    state = obj
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = next((obj[k] for k in STATE_DICT_KEYS if _is_state_dict(obj.get(k))), None)
    if state is None or not _is_state_dict(state):
        raise WeightsError(f"{safe_path(path)}: holds no state dict of tensors (looked for a table of tensors, or one "
                           f"under {', '.join(STATE_DICT_KEYS)})")
    # Wrapper prefixes stay: which to strip depends on the architecture's own keys (_unwrap).
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}, meta


def _unwrap(checkpoint: Checkpoint, own, path: Path, arch: str) -> Dict[str, Tuple[int, ...]]:
    """The checkpoint's shapes under the architecture's key names (``own``): the wrapper prefixes
    every key shares (:data:`WRAPPER_PREFIXES`, nested: ``model.module.``) are stripped as deep as
    makes the most keys the architecture's, and not at all when that makes none more so (a
    network whose own keys start with ``model.`` keeps them). ``checkpoint`` is changed to match
    (its shapes and the tensors it loads). Keys that all start with a prefix the architecture
    lacks, and that is not a wrapper's, are one line naming it: every other message would only
    list missing keys."""
    own, keys = set(own), list(checkpoint.shapes)
    # a counter beside the wrapped network (AveragedModel's n_averaged next to module.*) does not
    # stop the unwrapping; it stays as it is, a key the network lacks
    wrapped = [k for k in keys if "." in k or k in own] or keys
    chain = [""]
    while True:
        step = next((p for p in WRAPPER_PREFIXES if all(k.startswith(chain[-1] + p) for k in wrapped)), None)
        if step is None:
            break
        chain.append(chain[-1] + step)

    def matching(prefix: str) -> int:
        return sum(k.startswith(prefix) and k[len(prefix):] in own for k in keys)

    best = max(chain, key=lambda prefix: (matching(prefix), -len(prefix)))  # a tie strips nothing more
    if matching(best) == 0 and len(keys) > 1:
        _refuse_common_prefix(keys, own, path, arch)
    if best:
        load, cut = checkpoint.load, len(best)

        def unwrapped(table):
            return {k[cut:] if k.startswith(best) else k: v for k, v in table.items()}

        checkpoint.shapes = unwrapped(checkpoint.shapes)
        checkpoint.load = lambda: unwrapped(load())
    return checkpoint.shapes


def _refuse_common_prefix(keys: List[str], own: set, path: Path, arch: str) -> None:
    """One line when every key (none the architecture's) shares a dotted prefix, saying whether
    without it they would be the architecture's keys."""
    parts = [k.split(".") for k in keys]
    depth = 0
    while all(len(p) > depth + 1 and p[depth] == parts[0][depth] for p in parts):
        depth += 1
    if not depth:
        return
    prefix = ".".join(parts[0][:depth]) + "."
    shown = first_line(repr(prefix), 60)
    article = "an" if arch[:1].lower() in "aeiou" else "a"
    fix = (f"without it they are its keys: save the state dict with it removed, "
           f"{{k.removeprefix({shown}): v for k, v in sd.items()}}") if any(k[len(prefix):] in own for k in keys) \
        else "nor are they its keys without it"
    raise WeightsError(f"{safe_path(path)}: not {article} {arch} state dict: every key starts with {shown} "
                       f"(e.g. {first_line(repr(keys[0]), 80)}), which no key of {arch} does; {fix}")


def _is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and any(isinstance(v, torch.Tensor) for v in value.values())


def _check_finite(state: Dict[str, torch.Tensor], path: Path) -> None:
    for name, t in state.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            raise WeightsError(f"{safe_path(path)}: tensor {name!r} has NaN or infinite values; the file is damaged")


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def _build_from_state(path: Path, checkpoint: Checkpoint, architecture, kwargs: dict) -> Loaded:
    meta = checkpoint.meta
    if callable(architecture):
        net = architecture(**kwargs)
        if not isinstance(net, nn.Module):
            raise UsageError(f"architecture returned a {type(net).__name__}, not an nn.Module", param="architecture")
        arch, pre, min_size = type(net).__name__, None, 32
        _unwrap(checkpoint, net.state_dict(), path, arch)
    elif not isinstance(architecture, str):
        raise UsageError("architecture must be a model name or a function returning an nn.Module",
                         param="architecture")
    elif architecture.startswith(("timm:", "timm/")):
        net, pre, min_size = _build_timm(architecture[5:], checkpoint, kwargs, path)
        arch = f"{architecture[5:]} (timm)"
    else:
        net, pre, min_size = _build_torchvision(architecture, checkpoint, kwargs, path)
        arch = f"{architecture} (torchvision)"
    extra = check_state_shapes(net, checkpoint.shapes, path, arch, extra_ok=True)
    state = checkpoint.load()
    _check_finite(state, path)
    net.load_state_dict({k: v for k, v in state.items() if k in net.state_dict()}, strict=False)
    classes = _meta_class_names(meta)
    k = _head_classes(net)
    head = f" with a {k}-class head" if k else ""
    notes = [extra_keys_note(path, arch, extra)] if extra else []
    return Loaded(net, path.name, f"{arch}{head} from {path}", "state dict", classes, pre, min_size=min_size,
                  meta=meta, notes=notes)


def extra_keys_note(path: Path, arch: str, keys: List[str]) -> str:
    """One line naming the keys a state dict holds beyond its network (the first few and a count):
    the note of ``--model FILE`` and of a backbone's ``--weights FILE`` (the keys
    :func:`check_state_shapes` returns with ``extra_ok``)."""
    shown = ", ".join(safe_path(k) for k in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    return (f"{safe_path(path)}: left out {len(keys)} key{'s' if len(keys) != 1 else ''} {arch} has no module for "
            f"({shown}): training extras such as an auxiliary head, a loss's weights, an EMA counter")


def _head_keys(reference: nn.Module, classes: int) -> List[str]:
    """Parameter names of the classifier head: the Linear / 1×1 Conv2d layers with ``classes``
    outputs in a network built with that many classes (fc, classifier.1, heads.head, ...)."""
    keys = []
    for name, m in reference.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.shape[0] == classes:
            keys += [f"{name}.{p}" for p, _ in m.named_parameters(recurse=False)]
    return keys


def _classes_from_head(reference: nn.Module, shapes: dict, default: int, path: Path, arch: str) -> int:
    keys = [k for k in _head_keys(reference, default) if k.endswith("weight") and k in shapes]
    counts = {shapes[k][0] for k in keys}
    if len(counts) != 1:
        raise WeightsError(f"{safe_path(path)}: not a {arch} state dict (no classifier head found: expected "
                           f"{', '.join(k for k in _head_keys(reference, default) if k.endswith('weight')) or 'one'})")
    return counts.pop()


def _build_torchvision(name: str, checkpoint: Checkpoint, kwargs: dict, path: Path):
    """(module with the checkpoint's class count, Preprocessing from the weights' metadata, min size);
    ``checkpoint`` is unwrapped to the architecture's key names."""
    import torchvision

    from cvtools.backbones.torchvision_models import BUILD_KWARGS

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        hint = did_you_mean(name, known) or "; a torchvision classifier (resnet18, vit_b_16, ...) or timm:NAME"
        if re.search(r"[.:/\\]", name):  # a file or module path: the user's own class, which a name cannot reach
            hint = _own_class_hint(name)
        raise UsageError(f"unknown architecture {name!r}{hint}", param=("architecture", "model"))
    kwargs = {**BUILD_KWARGS.get(name, {}), **({"aux_logits": False, "init_weights": False}
                                               if name == "inception_v3" else {}), **kwargs}
    with torch.device("meta"):
        reference = torchvision.models.get_model(name, weights=None, **kwargs)
    shapes = _unwrap(checkpoint, reference.state_dict(), path, name)
    kwargs["num_classes"] = _classes_from_head(reference, shapes, 1000, path, name)
    if name.startswith("vit_") and "image_size" not in kwargs and "encoder.pos_embedding" in shapes:
        # a ViT fine-tuned at another size says so in its position embedding: 1 + (size/patch)² tokens
        side = math.isqrt(shapes["encoder.pos_embedding"][1] - 1)
        kwargs["image_size"] = side * reference.patch_size
    try:
        net = torchvision.models.get_model(name, weights=None, **kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"architecture={name!r} cannot be built ({first_line(exc, 160)})",
                         param="architecture_kwargs") from None
    weights = torchvision.models.get_model_weights(name).DEFAULT
    t = weights.transforms()
    crop = kwargs.get("image_size", t.crop_size[0])
    pre = Preprocessing(mean=list(t.mean), std=list(t.std), resize_size=round(t.resize_size[0] * crop / t.crop_size[0]),
                        crop_size=crop, interpolation=t.interpolation.value)
    return net, pre, max(weights.meta.get("min_size", (32, 32)))


def _own_class_hint(name: str) -> str:
    """How to load a network of one's own class, for an architecture named like a file or a
    module path (``mynet.py:SmallCNN``): cvtools imports no code a name points to (a model file
    must stay data), so the class travels as a program, or as a Python object."""
    cls = re.split(r"[.:/\\]", name)[-1]
    cls = cls if cls.isidentifier() and not name.endswith(".py") else "MyNet"
    return (f"; an architecture names a torchvision classifier (resnet18, vit_b_16, ...) or timm:NAME, not code to "
            f"import. For a class of your own, export the network as a program, torch.export.save("
            f"{DYNAMIC_BATCH_EXPORT}, 'm.pt2') ({EXAMPLE_BATCH}), and pass that file as `model` alone; or from "
            f"Python pass the class itself: load_user_model('weights.pth', {cls})")


def _build_timm(name: str, checkpoint: Checkpoint, kwargs: dict, path: Path):
    try:
        import timm
        from timm.data import resolve_data_config
    except ImportError:
        raise UsageError(f"architecture='timm:{name}' needs timm (pip install timm)", param="architecture") from None
    if not timm.is_model(name):
        hint = did_you_mean(name, timm.list_models()) or ""
        raise UsageError(f"unknown timm architecture {name!r}{hint}", param="architecture")
    kwargs = dict(kwargs)
    with torch.device("meta"):
        reference = timm.create_model(name, pretrained=False, **kwargs)
    head = reference.get_classifier()
    default = head.weight.shape[0] if isinstance(head, (nn.Linear, nn.Conv2d)) else 1000
    shapes = _unwrap(checkpoint, reference.state_dict(), path, f"timm {name}")
    kwargs["num_classes"] = _classes_from_head(reference, shapes, default, path, f"timm {name}")
    try:
        net = timm.create_model(name, pretrained=False, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise UsageError(f"architecture='timm:{name}' cannot be built ({first_line(exc, 160)})",
                         param="architecture_kwargs") from None
    meta = checkpoint.meta
    cfg = meta.get("pretrained_cfg") if isinstance(meta.get("pretrained_cfg"), dict) else {}
    data = resolve_data_config(dict(cfg), model=net)
    size = kwargs.get("img_size", data["input_size"][-1])  # pretrained_cfg keeps the default size
    crop = int(size if isinstance(size, int) else size[-1])
    pre = Preprocessing(mean=list(data["mean"]), std=list(data["std"]),
                        resize_size=round(crop / data.get("crop_pct", 0.875)), crop_size=crop,
                        interpolation=str(data.get("interpolation", "bicubic")))
    return net, pre, 32


def check_state_shapes(net: nn.Module, shapes: Dict[str, Tuple[int, ...]], path: Path, arch: str,
                       hint: str = "", extra_ok: bool = False) -> List[str]:
    """The checkpoint's names and shapes must be the architecture's (compared before any weight
    is read: memory-mapped tensors or a safetensors header); a mismatch is one line (``hint``
    appended). ``extra_ok``: keys under names the network has no module or tensor for (a
    training script's ``aux.``, ``criterion.``, ``n_averaged``) are returned, to be left out,
    instead of refused; extra keys inside the network's own modules (a resnet34's
    ``layer1.2.*`` for a resnet18, which has every other key of it) still refuse: another network."""
    own = net.state_dict()
    missing = [k for k in own if k not in shapes and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in shapes if k not in own and not k.startswith(("aux1.", "aux2.", "AuxLogits."))]
    names = {k.split(".")[0] for k in own} | {name for name, _ in net.named_children()}
    extra = [k for k in unexpected if k.split(".")[0] not in names] if extra_ok else []
    unexpected = [k for k in unexpected if k not in set(extra)]
    wrong = [k for k in own if k in shapes and tuple(shapes[k]) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {label} key{'s' if len(keys) != 1 else ''} ({', '.join(keys[:3])}"
                             f"{', …' if len(keys) > 3 else ''})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape ({k}: {list(shapes[k])} in the file, "
                         f"{list(own[k].shape)} in the architecture)")
        article = "an" if arch[:1].lower() in "aeiou" else "a"
        raise WeightsError(f"{safe_path(path)}: not {article} {arch} state dict: {'; '.join(parts)}{hint}")
    return extra


def _head_classes(net: nn.Module) -> int:
    last = None
    for m in net.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last.out_features if last is not None else 0


def _meta_class_names(meta: dict):
    for key in CLASS_NAME_KEYS:
        if key in meta:
            return meta[key]
    cfg = meta.get("pretrained_cfg")
    if isinstance(cfg, dict) and "label_names" in cfg:
        return cfg["label_names"]
    return None


# ---------------------------------------------------------------------- TorchScript

def _load_torchscript(path: Path) -> Loaded:
    _check_torchscript_zip(path)
    extra = {"class_names": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated: the warning is not the user's to act on
            net = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise WeightsError(f"{safe_path(path)}: not a loadable TorchScript file (truncated or damaged?) "
                           f"({first_line(exc, 160)})") from None
    note = ("TorchScript runs its submodules inside its own interpreter, where hooks cannot reach them, so "
            "its layers cannot be tapped; save the network as a state dict or a .pt2 program (torch.export) "
            "for methods that use layers")
    return Loaded(net, path.name, f"TorchScript file {path}", "TorchScript", _text_class_names(extra["class_names"]),
                  meta={"note": note})


def _check_torchscript_zip(path: Path) -> None:
    """Tensors stored uncompressed, code entries deflated to a bounded size: a small file cannot
    unpack to gigabytes (:func:`cvtools.weights.check_torch_zip` checks weight files the same way)."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise WeightsError(f"{safe_path(path)}: truncated or damaged TorchScript file") from None
    size = path.stat().st_size
    stored = sum(i.file_size for i in infos if i.compress_type == zipfile.ZIP_STORED)
    packed = [i for i in infos if i.compress_type != zipfile.ZIP_STORED]
    outside = [i.filename for i in packed if "/code/" not in i.filename]
    if outside or sum(i.file_size for i in packed) > MAX_TORCHSCRIPT_CODE or stored > size:
        what = f"compressed entry {safe_path(repr(outside[0]))}" if outside else "entries larger than the file allows"
        raise WeightsError(f"{safe_path(path)}: not a TorchScript file as torch.jit.save writes it ({what}); refused")


def _text_class_names(text):
    """Class names from an extra file of a TorchScript/.pt2 (bytes or text): JSON, or one per line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text:
        return None
    value = _json_or_text(text)
    return value if isinstance(value, (list, dict)) else [line.strip() for line in text.splitlines() if line.strip()]


def _input_size(wrapper: "UserNetwork", name: str) -> Tuple[int, int]:
    """The size a network states (torchvision's ViT ``image_size``, timm's ``patch_embed.img_size``),
    else the first of :data:`TRIAL_SIZES` it runs at."""
    net = wrapper.net
    stated = getattr(net, "image_size", None) or getattr(getattr(net, "patch_embed", None), "img_size", None)
    if isinstance(stated, (tuple, list)) and len(stated) == 2:
        stated = stated[0] if stated[0] == stated[1] else None
    if isinstance(stated, int) and 8 <= stated <= 4096:
        return stated, stated
    # The first failure is kept to be told: "runs on none of the sizes" alone hides a model that
    # returns a tuple or wants grayscale, which no size fixes (so those end the trials at once).
    failure = wrong = None
    for side in TRIAL_SIZES:
        try:
            with torch.no_grad():
                out = wrapper(torch.zeros(2, 3, side, side))
        except Exception as exc:
            if _channels_wanted(exc) is not None:
                raise _input_failure(exc, name, (side, side)) from None
            failure = failure or (exc, side)
            continue
        if isinstance(out, torch.Tensor) and out.dim() == 2:
            return side, side
        if not isinstance(out, torch.Tensor):
            _check_logits(out, name)
        wrong = wrong if wrong is not None else out
    if wrong is not None:
        _check_logits(wrong, name)  # a tensor of another shape at every size that runs
    reason = f" (at {failure[1]} px: {_torch_reason(failure[0], 160)})" if failure else ""
    raise WeightsError(f"{safe_path(name)}: the model runs on none of the sizes {', '.join(map(str, TRIAL_SIZES))} px "
                       f"as N×3×H×W images{reason}; is it an image classifier? (`input_size` sets the size)",
                       param="input_size")


def _torch_reason(exc: BaseException, limit: int) -> str:
    """What torch said, on one line: a TorchScript error is the interpreter's traceback, whose
    last 'XError: ...' line is the reason (its first line only says an operation failed)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = next((line for line in reversed(lines[1:]) if re.match(r"[A-Za-z_.]*(Error|Exception): ", line)), None)
    return first_line(last.split(": ", 1)[1] if last else exc, limit)


def _channels_wanted(exc: BaseException) -> Optional[int]:
    """The channel count a convolution that refused the RGB batch asked for (torch: 'expected
    input[2, 3, 224, 224] to have 1 channels, but got 3 channels instead'), else None."""
    found = re.search(r"expected input\[[\d, ]*\] to have (\d+) channels, but got 3 channels", str(exc))
    return int(found.group(1)) if found else None


def _channels_advice(channels: int, name: str) -> str:
    """What to do with a model of ``channels`` input channels, which cvtools (feeding RGB) cannot
    run as it is, after 'takes' or 'is': the wrapper goes back where the model came from."""
    again = "export the wrapper again" if name.lower().endswith(".pt2") else "use the wrapper instead"
    if channels == 1:
        return ("1-channel (grayscale) images, and cvtools feeds RGB; wrap the model to take 3, e.g. averaging "
                f"them: return model(x.mean(1, keepdim=True)), and {again}")
    return (f"{channels}-channel images, and cvtools feeds RGB; wrap the model to make its {channels} channels of "
            f"the 3, and {again}")


def _input_failure(exc: BaseException, name: str, size) -> WeightsError:
    """The error for a model that fails on a batch of RGB images of ``size``: its channel count
    when a convolution says it wants another, else what torch said."""
    channels = _channels_wanted(exc)
    if channels is not None:
        weight = re.search(r"weight of size (\[[\d, ]*\])", str(exc))
        seen = f" (its first convolution's weight is {weight.group(1)})" if weight else ""
        return WeightsError(f"{safe_path(name)}: the model takes {_channels_advice(channels, name)}{seen}")
    return WeightsError(f"{safe_path(name)}: the model fails on a batch of two 3×{size[0]}×{size[1]} images "
                        f"({_torch_reason(exc, 160)}); is it an image classifier? (`input_size` sets the size)",
                        param="input_size")


# ---------------------------------------------------------------------- torch.export programs

#: The archive entries a .pt2 of one exported program has (torch.export.save), below its root folder.
_PROGRAM_ENTRIES = re.compile(
    r"(archive_format|archive_version|byteorder|version|\.data/version|\.data/serialization_id"
    r"|models/[\w.-]+\.json|data/weights/weight_\d+|data/weights/[\w.-]+_weights_config\.json"
    r"|data/constants/tensor_\d+|data/constants/[\w.-]+_constants_config\.json"
    r"|data/sample_inputs/[\w.-]+\.pt|extra/[\w.-]+)")
#: Operators a program may call: aten / prims / higher-order ops, and Python's operator and math.
_PROGRAM_TARGETS = re.compile(r"torch\.ops\.(aten|prims|higher_order)\.[A-Za-z]\w*(\.[A-Za-z]\w*)?"
                              r"|_operator\.[a-z]\w*|math\.[a-z]\w*")
#: Shape expressions (sympified by torch's loader, written by sympy's srepr: ``Symbol('s77',
#: positive=True, integer=True)``): symbols, numbers, arithmetic, sympy's classes and assumptions.
_SHAPE_EXPR = re.compile(r"(?:[\s+\-*/%(),<>=!]|\d+(?:\.\d+)?|'?[su]\d+'?|[a-z]+(?==)|[A-Z][A-Za-z]*|oo)*")
#: Guards (exec'd by torch's loader): comparisons of input sizes with numbers.
_GUARD = re.compile(r"(?:[\s+\-*/%()<>=!]|\d+|L\['[A-Za-z_]\w*'\]\.size\(\)\[\d+\]|and|or|not)*")


def check_program(path: Path) -> None:
    """Refuse a .pt2 archive that torch's loader would not read as plain data.

    ``torch.export.load`` unpickles tensors marked ``use_pickle`` and sample inputs that fail a
    safe load (with ``weights_only=False``), ``sympify``s every shape expression and ``exec``s the
    program's guards when the module is made; AOTInductor and ExecuTorch payloads are native
    code. So: only the entries an exported program has, no pickles, every sample-input file
    loadable with ``weights_only=True``, guards and shape expressions of plain arithmetic on
    sizes, and operators from aten / prims / higher-order ops.
    """
    from cvtools.weights import check_torch_zip

    check_torch_zip(path)
    with zipfile.ZipFile(path) as z:
        for entry in z.namelist():
            inner = entry.split("/", 1)[1] if "/" in entry else entry
            if not _PROGRAM_ENTRIES.fullmatch(inner):
                _refuse_program(path, f"unexpected entry {safe_path(repr(inner))}")
            if inner.endswith("_config.json"):
                config = _read_json(z, entry, path).get("config", {})
                if any(not isinstance(v, dict) or v.get("use_pickle") for v in config.values()):
                    _refuse_program(path, f"pickled tensors in {inner}")
            elif inner.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(z.read(entry)), weights_only=True)
                except Exception:
                    _refuse_program(path, f"{inner} is not plain tensors")
            elif inner.startswith("models/"):
                _check_program_json(_read_json(z, entry, path), path)


def _read_json(z: zipfile.ZipFile, entry: str, path: Path):
    try:
        value = json.loads(z.read(entry))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WeightsError(f"{safe_path(path)}: damaged .pt2 program ({safe_path(repr(entry))} is not JSON)") from None
    if not isinstance(value, dict):
        raise WeightsError(f"{safe_path(path)}: damaged .pt2 program ({safe_path(repr(entry))} is not a table)")
    return value


def _check_program_json(program: dict, path: Path) -> None:
    for guard in program.get("guards_code") or []:
        if not isinstance(guard, str) or "__" in guard or not _GUARD.fullmatch(guard):
            _refuse_program(path, f"a guard that is not a size comparison ({first_line(str(guard), 80)!r})")
    stack = [program.get("graph_module"), program.get("range_constraints")]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key == "metadata":
                    continue  # stack traces and module paths, shown only
                if key == "target" and isinstance(value, str) and not _PROGRAM_TARGETS.fullmatch(value):
                    _refuse_program(path, f"it calls {first_line(value, 80)!r}, not an aten operator")
                if key == "expr_str" and (not isinstance(value, str) or "__" in value
                                          or not _SHAPE_EXPR.fullmatch(value)):
                    _refuse_program(path, f"a shape expression that is not arithmetic ({first_line(str(value), 80)!r})")
                stack.append(value)
    for name in (program.get("range_constraints") or {}):
        if not re.fullmatch(r"[su]\d+", str(name)):
            _refuse_program(path, f"a shape symbol named {first_line(str(name), 40)!r}")


def _refuse_program(path: Path, reason: str):
    raise WeightsError(f"{safe_path(path)}: refused as a torch.export program: {reason} (torch's loader would run or "
                       "unpickle it); export the network again with torch.export.export and torch.export.save")


def _load_program(path: Path) -> Loaded:
    check_program(path)
    extra = {"class_names": ""}
    try:
        with warnings.catch_warnings(), _quiet_export_log() as logged:
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path), extra_files=extra)
            _check_program_graph(program, path)
            net = torch.export.unflatten(program)
    except WeightsError:
        raise
    except Exception as exc:
        cause = logged[0] if logged else exc  # torch logs the real error and raises a "see the warnings above"
        raise WeightsError(f"{safe_path(path)}: not a loadable torch.export program (truncated or damaged?) "
                           f"({first_line(cause, 160)})") from None
    fixed, batch = _program_input(program, path)
    loaded = Loaded(net, path.name, f"torch.export program {path}", "exported program",
                    _text_class_names(extra.get("class_names", "")), fixed_size=fixed, min_size=32)
    if batch is not None:
        _fixed_batch(loaded, batch, path)
    return loaded


#: How to export a program whose batch is free, and what its example input must be (torch fixes
#: a dimension of size 1 at 1, even one declared dynamic).
DYNAMIC_BATCH_EXPORT = "torch.export.export(model.eval(), (x,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))"
EXAMPLE_BATCH = "x: 2 or more images at its input size"


def _fixed_batch(loaded: Loaded, batch: int, path: Path) -> None:
    """A program exported for batches of exactly ``batch`` images. Most graphs do not depend on
    the batch (convolutions, pooling, ``flatten(1)``): with torch's input check off, such a program
    runs batched as if exported with a dynamic batch, which a batch of 2 images giving each image's
    own logits shows. One whose graph spells its batch out (a ``reshape(1, ...)``) runs one image
    at a time when that batch is 1; then its layer hooks would see a call per image, so its layers
    are not tapped. Otherwise refused."""
    net = loaded.network
    net.check_input_constraints = False  # torch's check of the exported shapes: the batch is tried below
    size = loaded.fixed_size or (224, 224)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    alone = together = None
    with torch.no_grad(), contextlib.suppress(Exception):
        alone = torch.cat([net(image) for image in x.split(1)])
    with torch.no_grad(), contextlib.suppress(Exception):
        together = net(x)
    if isinstance(alone, torch.Tensor) and isinstance(together, torch.Tensor) and together.shape == alone.shape \
            and torch.allclose(together, alone, rtol=1e-4, atol=1e-4 * max(1.0, float(alone.abs().max()))):
        loaded.meta["batch"] = f"; exported for batches of {batch}, runs on any (its graph does not depend on it)"
        return
    if batch != 1 or not isinstance(alone, torch.Tensor):
        raise WeightsError(f"{safe_path(path)}: the program takes batches of exactly {batch} image"
                           f"{'s' if batch != 1 else ''}; export it with a dynamic batch: {DYNAMIC_BATCH_EXPORT}, "
                           f"{EXAMPLE_BATCH}")
    loaded.one_at_a_time = True
    loaded.meta["batch"] = "; exported for batches of 1: images run one at a time"
    loaded.meta["note"] = ("the program was exported for batches of 1 image and its graph runs on no other batch, "
                           "so images run one at a time and its layers cannot be tapped (a hook would see one "
                           f"image per call); for methods that use layers export it with a dynamic batch: "
                           f"{DYNAMIC_BATCH_EXPORT}, {EXAMPLE_BATCH}")


@contextlib.contextmanager
def _quiet_export_log():
    """torch.export's logger held back while inside: a damaged archive makes ``torch.export.load``
    log its error's whole traceback as a warning before failing, ~15 lines above cvtools' one.
    Yields the exceptions it logged (for the one line); the logger is put back as it was."""
    import logging

    logger = logging.getLogger("torch.export")
    logged: List[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.exc_info and record.exc_info[1] is not None:
                logged.append(record.exc_info[1])

    keep = Keep()
    saved = logger.handlers[:], logger.propagate
    logger.handlers[:] = [keep]
    logger.propagate = False
    try:
        yield logged
    finally:
        logger.handlers[:], logger.propagate = saved


def _check_program_graph(program, path: Path) -> None:
    """Every call in the loaded graphs is an operator (the JSON was checked; this checks what it became)."""
    import operator

    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in (graph.nodes if graph is not None else []):
            target = node.target
            if node.op == "call_function" and not (
                    isinstance(target, (torch._ops.OpOverload, torch._ops.HigherOrderOperator))
                    or target in vars(operator).values() or target in vars(math).values()):
                _refuse_program(path, f"it calls {first_line(repr(target), 80)}")


def _program_input(program, path: Path) -> Tuple[Optional[Tuple[int, int]], Optional[int]]:
    """(the fixed (H, W) of the program's one image input, or None when its spatial sizes are
    dynamic; its fixed batch, or None when dynamic); an input that is not N×3×H×W is one line
    naming the file."""
    inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    vals = [n.meta.get("val") for n in inputs]
    if len(vals) != 1 or not isinstance(vals[0], torch.Tensor):
        raise WeightsError(f"{safe_path(path)}: the program takes {len(vals)} inputs; cvtools gives it one N×3×H×W "
                           "image batch")
    shape = vals[0].shape
    # A dimension left free is a torch.export symbol (s77), which means nothing to the reader.
    letters = "NCHW" if len(shape) == 4 else "N" + "?" * (len(shape) - 1)
    shown = "×".join(str(s) if isinstance(s, int) else ("any" if c == "?" else c) for s, c in zip(shape, letters))
    if len(shape) == 4 and isinstance(shape[1], int) and shape[1] != 3:
        raise WeightsError(f"{safe_path(path)}: the program's input is {shown}, not an N×3×H×W image batch: it "
                           f"takes {_channels_advice(shape[1], path.name)}")
    if len(shape) != 4 or not (isinstance(shape[1], int) and shape[1] == 3):
        raise WeightsError(f"{safe_path(path)}: the program's input is {shown}, not an N×3×H×W image batch")
    batch = int(shape[0]) if isinstance(shape[0], int) else None
    if isinstance(shape[2], int) and isinstance(shape[3], int):
        return (int(shape[2]), int(shape[3])), batch
    return None, batch


# ====================================================================== preprocessing and classes

def _preprocessing(loaded: Loaded, input_size, mean, std, on_note=None) -> Preprocessing:
    """The architecture's evaluation transform (else 224 px and ImageNet's statistics), then the
    caller's ``input_size``/``mean``/``std``; a network fixed to one size keeps that size (and
    ``on_note`` hears that an ``input_size`` asking for another is ignored)."""
    pre = copy.copy(loaded.preprocessing) if loaded.preprocessing else Preprocessing(
        mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), resize_size=256, crop_size=224)
    if input_size is not None:
        if not isinstance(input_size, int) or not 8 <= input_size <= 4096:
            raise UsageError("input_size must be a whole number of pixels from 8 to 4096", param="input_size")
        pre.resize_size, pre.crop_size = round(input_size * pre.resize_size / pre.crop_size), input_size
    if loaded.fixed_size is not None:
        if input_size is not None and (input_size, input_size) != loaded.fixed_size:
            h, w = loaded.fixed_size
            send_note(on_note, f"{safe_path(loaded.name)}: the program's size is fixed at {w}×{h} (it was exported at "
                           f"that size); the input size {input_size} asked for is ignored")
        pre.resize_size, pre.crop_size = round(loaded.fixed_size[0] * pre.resize_size / pre.crop_size), \
            loaded.fixed_size[0]
    for label, value in (("mean", mean), ("std", std)):
        if value is None:
            continue
        values = [float(v) for v in value] if isinstance(value, (list, tuple)) else []
        if len(values) != 3 or not all(math.isfinite(v) for v in values) or (label == "std" and min(values) <= 0):
            raise UsageError(f"{label} must be three numbers (R, G, B){', each above 0' if label == 'std' else ''}",
                             param=label)
        setattr(pre, label, values)
    return pre


def send_note(on_note, message: str) -> None:
    """A note to ``on_note``; with none to take it, a Python warning rather than silence."""
    import sys

    if on_note is not None:
        on_note(message)
        return
    # The warning points at the first caller outside cvtools (load_user_model is reached through
    # cvtools.backbones or directly, so no fixed stack level fits both).
    package = str(Path(__file__).resolve().parents[1])
    level, frame = 2, sys._getframe(1)  # level 2: the frame that called send_note
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, stacklevel=level)


def _class_names(classes, from_model, count: int, model_name: str) -> List[str]:
    """``count`` names: from ``classes`` (a file or a list), else the model's own, else 'class i'."""
    if classes is not None:
        source = safe_path(classes) if isinstance(classes, (str, Path)) else "classes"
        names = _read_classes_file(Path(classes)) if isinstance(classes, (str, Path)) else classes
        names = _as_name_list(names, count, source)
        if names is None or len(names) != count:
            got = len(names) if isinstance(names, list) else "no usable"
            raise UsageError(f"{source}: {got} class names for a model with {count} outputs", param="classes")
        _check_distinct_names(names, source, lines=isinstance(classes, (str, Path))
                              and Path(classes).suffix.lower() != ".json")
        return names
    if from_model is not None:
        names = _as_name_list(from_model, count, model_name)
        if names is not None and len(names) == count:
            _check_distinct_names(names, safe_path(model_name), lines=False, in_model=True)
            return names
        raise WeightsError(f"{safe_path(model_name)}: its class names do not match its {count} outputs; "
                           "pass classes=FILE")
    return [f"class {i}" for i in range(count)]


def _check_distinct_names(names: List[str], source: str, lines: bool, in_model: bool = False) -> None:
    """Every class needs a name of its own: a target given by name picks one class, and an
    empty name cannot be asked for (nor read in a caption). ``lines``: ``names`` are a text
    file's lines (the message gives line numbers, else indices). ``in_model``: the names were
    stored in the model file (a checkpoint's ``class_names``, a .pt2/TorchScript extra file):
    the same check, a WeightsError about that file, and the way out (``classes=FILE``)."""
    where = (lambda i: f"line {i + 1}") if lines else (lambda i: f"index {i}")
    error, own = (WeightsError, " of its stored class names") if in_model else (UsageError, "")
    way_out = "; pass classes=FILE to name them" if in_model else ""
    seen: Dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            raise error(f"{source}: {where(i)}{own} is an empty class name; every class needs a name of its own"
                        f"{way_out}", param="classes")
        if name in seen:
            raise error(f"{source}: class name {name!r} is at {where(seen[name])} and at {where(i)}{own}; class names "
                        f"must differ (a target given by name must pick one class){way_out}", param="classes")
        seen[name] = i


def _read_classes_file(path: Path):
    from cvtools.weights import _check_readable

    _check_readable(path, "class-names file")
    if path.stat().st_size > MAX_CLASSES_FILE:
        raise UsageError(f"{safe_path(path)}: too large for a class-names file", param="classes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{safe_path(path)}: not a UTF-8 text file of class names ({first_line(exc, 80)})",
                         param="classes") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise UsageError(f"{safe_path(path)}: not valid JSON (a list of names, or index: name)",
                             param="classes") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def _as_name_list(names, count: int, source: str):
    """A list of ``count`` strings from a list, or a {index: name} table covering 0..count-1."""
    if isinstance(names, dict):
        try:
            table = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise UsageError(f"{source}: class-name keys must be indices 0..{count - 1}", param="classes") from None
        if sorted(table) != list(range(len(table))):
            raise UsageError(f"{source}: class-name indices must run 0..{len(table) - 1} without gaps",
                             param="classes")
        return [table[i] for i in range(len(table))]
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return [n.strip() for n in names]
    return None


# ====================================================================== the probe

@dataclass
class Probe:
    classes: int
    layers: list = field(default_factory=list)  # LayerInfo, in execution order
    views: dict = field(default_factory=dict)  # layer -> view
    defaults: LayerDefaults = field(default_factory=lambda: LayerDefaults(style=[], content="", dream=[], cam=""))
    note: str = ""


def probe_network(wrapper: UserNetwork, size: Tuple[int, int], name: str, untappable: str = "") -> Probe:
    """Check the network on a random batch and list its layers (see :mod:`cvtools.backbones.user_model`);
    ``untappable``: why its layers cannot be tapped, when they cannot."""
    tappable = not untappable
    from cvtools.backbones.base import LayerInfo

    outputs, order, logits = _trace(wrapper, size, name, tappable)
    classes = _check_logits(logits, name)
    elsewhere = None  # the shapes at a second size, for a network that takes any
    if wrapper.fixed_size is None:
        wrapper.fixed_size, elsewhere = _fixed_size(wrapper, size, classes, tappable)
        wrapper.input_size = size
    probe = Probe(classes)
    if not tappable:
        probe.note = untappable
        return probe
    maps, grids = [], []
    for layer in order:
        shape = outputs[layer]
        other = (elsewhere[0].get(layer), elsewhere[1]) if elsewhere and layer in elsewhere[0] else None
        kind, view = _view_for(shape, size, grids, wrapper, other)
        if kind == "map" and view is None:
            grids.append((shape[2], shape[3]))
        if kind == "map":
            map_shape = tuple(view.to_map(torch.empty(shape, device="meta")).shape[1:]) if view else tuple(shape[1:])
            maps.append((layer, map_shape))
            stride = max(1, round(size[0] / map_shape[1]))
            probe.layers.append(LayerInfo(layer, map_shape[0], stride, map_shape, _describe(view)))
            if view is not None:
                probe.views[layer] = view
        else:
            probe.layers.append(LayerInfo(layer, int(shape[1]), 0, tuple(shape[1:]), ""))
    if not maps:
        probe.note = "no layer of it outputs a feature map"
        return probe
    cam = _cam_layer(wrapper, size, maps, probe.views)
    probe.defaults = _defaults(maps, cam)
    return probe


def _view_for(shape, size, grids, wrapper, other):
    from cvtools.backbones.tokens import view_for

    return view_for(shape, 2, size, grids, lambda: wrapper.input_size, other)


def _describe(view) -> str:
    return view.describe() if view is not None else ""


@contextlib.contextmanager
def _recording(net: nn.Module, enabled: bool = True):
    """Hooks on every submodule while inside: yields (path -> output shape of its first call,
    path -> calls, paths in the order their outputs were ready)."""
    shapes: Dict[str, Tuple[int, ...]] = {}
    calls: Dict[str, int] = {}
    order: List[str] = []

    def hook(path, output):
        calls[path] = calls.get(path, 0) + 1
        if calls[path] == 1 and isinstance(output, torch.Tensor):
            shapes[path] = tuple(output.shape)
            order.append(path)

    handles = [module.register_forward_hook(lambda m, i, o, path=path: hook(path, o))
               for path, module in (net.named_modules() if enabled else []) if path]
    try:
        yield shapes, calls, order
    finally:
        for h in handles:
            h.remove()


def _trace(wrapper: UserNetwork, size, name: str, tappable: bool):
    """One forward of 2 random images with a hook on every submodule: (module path -> output shape,
    the paths that ran exactly once with one batch-first tensor output in the order their outputs
    were ready, the logits)."""
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with _recording(wrapper.net, tappable) as (shapes, calls, order):
        try:
            with torch.no_grad():
                logits = wrapper(x)
        except Exception as exc:
            raise _input_failure(exc, name, size) from None
    once = [p for p in order if calls[p] == 1 and shapes[p][:1] == (2,)]
    return shapes, once, logits


def _check_logits(logits, name: str) -> int:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() != 2 \
            or logits.shape[0] != 2:
        raise WeightsError(f"{safe_path(name)}: the model returns {_output_text(logits)} for 2 images, not one "
                           f"N×K tensor of class scores{_unpack_hint(logits)}")
    if logits.shape[1] < 2:
        raise WeightsError(f"{safe_path(name)}: the model returns one score per image; a single-logit "
                           "(sigmoid) head is not supported yet")
    return int(logits.shape[1])


def _output_text(out) -> str:
    """What a model returned, for a message: 'a 2×10 tensor', 'a tuple (a 2×10 tensor, a
    2×128×8×8 tensor)', "a dict ('logits': a 2×10 tensor)"."""
    def one(value) -> str:
        return f"a {'×'.join(map(str, value.shape))} tensor" if isinstance(value, torch.Tensor) \
            else f"a {type(value).__name__}"

    if isinstance(out, dict):
        items = [f"{first_line(repr(k), 40)}: {one(v)}" for k, v in list(out.items())[:4]]
    elif isinstance(out, (tuple, list)):
        items = [one(v) for v in out[:4]]
    else:
        return one(out)
    more = ", …" if len(out) > 4 else ""
    return f"a {type(out).__name__} ({', '.join(items)}{more})"


def _unpack_hint(out) -> str:
    """How to wrap a model whose output holds the logits among other things: the first 2×K float
    tensor in its tuple or dict, picked out by a wrapper's forward."""
    if isinstance(out, dict):
        pairs = list(out.items())
    elif isinstance(out, (tuple, list)):
        pairs = list(enumerate(out))
    else:
        return ""
    pick = next((k for k, v in pairs if isinstance(v, torch.Tensor) and v.is_floating_point()
                 and v.dim() == 2 and v.shape[0] == 2 and v.shape[1] > 1), None)
    shown = f"return model(x)[{first_line(repr(pick), 40)}]" if pick is not None else "return the logits"
    return f"; wrap it so that forward returns only the N×K logits tensor ({shown}), and use the wrapper instead"


def _fixed_size(wrapper: UserNetwork, size, classes: int, tappable: bool):
    """(``size`` when the network fails or answers otherwise at another, non-square size, else None;
    the layers' output shapes there, which tell channels-first from channels-last maps where one
    square size cannot: an N×16×16×16 output)."""
    other = (size[0] + 20, size[1] + 12)
    with _recording(wrapper.net, tappable) as (shapes, _, _):
        try:
            with torch.no_grad():
                out = wrapper(torch.zeros(1, 3, *other))
            if isinstance(out, torch.Tensor) and tuple(out.shape) == (1, classes):
                return None, (shapes, other)
        except Exception:
            pass
    return size, None


def _cam_layer(wrapper: UserNetwork, size, maps, views) -> str:
    """The default CAM layer: among the layers shaped like the last spatial map (the one before
    pooling), the last whose positions reach the logits. For a CNN that is the last map itself.
    A ViT reads its class token: at the last block's output (and everything after its attention)
    the patch tokens reach nothing, so their gradient, and every Grad-CAM there, is exactly 0;
    the last layer where they still matter is the input of the last attention, the last block's
    first norm (pytorch-grad-cam's ``blocks[-1].norm1``), which this finds by itself."""
    spatial = [(n, s) for n, s in maps if s[1] * s[2] > 1]
    if not spatial:
        return maps[-1][0]
    final = spatial[-1][1]
    candidates = [n for n, s in spatial if s == final]
    seen: Dict[str, torch.Tensor] = {}
    handles = []
    for layer in candidates:
        def keep(module, inputs, output, layer=layer):
            seen[layer] = output
            return output.clone()  # an in-place op after the layer must not change what is differentiated
        handles.append(wrapper.net.get_submodule(layer).register_forward_hook(keep))
    # What reaches the logits reaches the classifier's input too; differentiating a projection of
    # that input also works for an untrained head (torchvision starts ViT heads at zero, where
    # every gradient of the logits is 0 and no layer would seem to matter).
    head_input: Dict[str, torch.Tensor] = {}

    def last_vector_input(module, inputs, output):  # the head: the last module fed N×D vectors
        if inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() == 2 and inputs[0].is_floating_point():
            head_input["x"] = inputs[0]

    for module in wrapper.net.modules():
        if not any(True for _ in module.children()):  # leaves (nn.Linear, or an exported program's)
            handles.append(module.register_forward_hook(last_vector_input))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, *size, generator=gen).requires_grad_(True)
    try:
        with torch.enable_grad():
            logits = wrapper(x)
            objective = (logits.float() * torch.randn(logits.shape, generator=gen)).sum()
            if "x" in head_input:
                h = head_input["x"].float()
                objective = objective + (h * torch.randn(h.shape, generator=gen)).sum()
            outs = [seen[n] for n in candidates if n in seen]
            grads = torch.autograd.grad(objective, outs, allow_unused=True)
    except Exception:
        return spatial[-1][0]
    finally:
        for h in handles:
            h.remove()
    reaching = [n for n, g in zip([n for n in candidates if n in seen], grads)
                if g is not None and bool((views[n].to_map(g) if n in views else g).abs().amax() > 0)]
    return reaching[-1] if reaching else spatial[-1][0]


def _defaults(maps, cam: str) -> LayerDefaults:
    """Style, content and dream layers from the network's stages: the last layer at each spatial
    size (the shallowest module path there: ``layer2`` rather than ``layer2.1.bn2``). With three
    sizes or more (a CNN, Swin, ConvNeXt): style = the first four stage ends before the last,
    content the middle one, dream the one before the last (resnet18: stem relu, layer1..3;
    layer2; layer3, as the registry's). A single-size network (ViT) uses its blocks: the largest
    run of sibling layers at that size, style four evenly spaced, content the middle one, dream
    two thirds deep."""
    spatial = [(n, s) for n, s in maps if s[1] * s[2] > 1] or maps
    ends: List[str] = []
    run: List[str] = []
    for i, (name, shape) in enumerate(spatial):
        run.append(name)
        if i + 1 == len(spatial) or spatial[i + 1][1][1:] != shape[1:]:
            depth = min(n.count(".") for n in run)
            ends.append([n for n in run if n.count(".") == depth][-1])
            run = []
    if len(ends) >= 3:
        style = ends[:-1][:4]
        return LayerDefaults(style=style, content=ends[(len(ends) - 1) // 2], dream=[ends[-2]], cam=cam)
    blocks = _blocks(spatial) or [ends[-1]]
    n = len(blocks)
    style = list(dict.fromkeys(blocks[round(i * (n - 1) / 4)] for i in range(4)))
    return LayerDefaults(style=style, content=blocks[n // 2], dream=[blocks[min(n - 1, (2 * n) // 3)]], cam=cam)


def _blocks(spatial) -> List[str]:
    """The blocks of a single-size network: the largest group of numbered sibling layers (one
    parent path, names ending in an index: ``blocks.3``, ``encoder_layer_3``) shaped like its
    last map, the shallowest group on a tie (``encoder.layers.*`` rather than ``mlp.3``/``mlp.4``
    inside one block), in order."""
    final = spatial[-1][1]
    groups: Dict[str, List[str]] = {}
    for name, shape in spatial:
        if shape == final and re.search(r"(^|\.)(\d+|\w*_\d+)$", name):
            groups.setdefault(name.rpartition(".")[0], []).append(name)
    if not groups:
        return []
    return max(groups.items(), key=lambda item: (len(item[1]), -item[0].count(".")))[1]
