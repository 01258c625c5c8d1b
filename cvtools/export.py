"""Export a style (or a backbone) to ONNX, checked against PyTorch: the API behind ``cvtools export``.

>>> from cvtools.export import export_style
>>> report = export_style("starry_night", "starry_night.onnx")       # fp32, checked on 3 photos
>>> report.sha256, report.opset, [c.max_abs_diff for c in report.checks]

What is exported is the inference form cvtools runs itself (:meth:`TransformerNet.for_inference`
with ``space_to_depth=True``, as :class:`~cvtools.style.stylize.Stylizer` uses on CPUs and GPUs:
the sub-pixel decoder and the 9×9 convolutions as 3×3 convolutions on 4×4 space-to-depth
blocks), written shape-generically so that one file serves any batch, height and width:

- input ``image``: float32, N×3×H×W, RGB in [0, 1], H and W at least 16 (any size: odd sizes
  are reflection-padded to a multiple of 4 inside the graph and cropped back, as in PyTorch);
- output ``stylized`` (styles): float32, N×3×H×W in [0, 1]; ``logits`` (backbones): N×1000,
  ImageNet classes (their names in the metadata), the backbone's normalisation inside the graph.

``precision="fp16"`` stores weights and computes in fp16 (for GPUs, phones, browsers: half the
file); its inputs and outputs stay float32 (the casts are in the graph). The file's
``metadata_props`` carry the style's record (painting, provenance of the style image, weights
SHA-256, recipe), the precision, the opset and the versions that made it.

Every export is checked before it is moved into place: onnxruntime (CPU) on three photos of
different sizes must give PyTorch's output within 1e-4 (fp32); see :func:`check_bound` for fp16.
The ONNX exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export, then ONNX Script:
it needs the ``onnxscript`` package). Needs the optional extra: ``pip install 'cvtools[onnx]'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from cvtools.errors import CvtoolsError, ImageError, UsageError, one_line, safe_path

#: fp32 files must match PyTorch within this (outputs in [0, 1]; logits: relative to their scale).
FP32_BOUND = 1e-4
#: fp16: the exported file may be at most this many times as far from the fp32 PyTorch output as
#: PyTorch's own fp16 network is (two independent fp16 computations; see check_bound).
FP16_FACTOR = 2.0
#: ... and never held to less than a few fp16 rounding steps of an output in [0.5, 1) (2^-11 each).
FP16_FLOOR = 4 * 2.0 ** -11
#: The smallest height and width an exported style takes (the network's reflection padding).
MIN_STYLE_SIDE = 16
INSTALL_HINT = "pip install 'cvtools[onnx]'  (or: pip install onnx onnxscript onnxruntime)"
PRECISIONS = ("fp32", "fp16")


# ---------------------------------------------------------------------------- optional imports


def require_exporter():
    """(onnx, onnxscript) or a one-line UsageError telling how to install them."""
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UsageError(f"exporting to ONNX needs {' and '.join(missing)}, which is not installed; {INSTALL_HINT}")
    import onnx
    import onnxscript

    return onnx, onnxscript


def check_onnxruntime_options(device="auto", precision="auto", compile=False) -> None:
    """The stylize options onnxruntime can run (the CPU, fp32, its own graph optimisation):
    checked before anything heavy loads (``OnnxRuntimeStylizer`` checks them too)."""
    if device not in (None, "auto", "cpu"):
        raise UsageError(f"engine='onnxruntime' runs on the CPU; use device='cpu' (not {device!r})",
                         param=("engine", "device"))
    if precision not in (None, "auto", "fp32"):
        raise UsageError("engine='onnxruntime' runs fp32 on the CPU; use precision='fp32' (or auto)",
                         param=("engine", "precision"))
    if compile:
        raise UsageError("compile=True is for the PyTorch engine; onnxruntime optimises the graph itself",
                         param="compile")


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f"onnxruntime is not installed; {INSTALL_HINT}") from None
    return onnxruntime


def cpu_session(path, threads: Optional[int] = None):
    """An onnxruntime CPU InferenceSession for ``path`` (a one-line error if it is not ONNX)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not for our users
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CvtoolsError(f"{safe_path(path)}: onnxruntime cannot load it ({one_line(exc, 200)})") from None


# ---------------------------------------------------------------------------- export forms


def _style_form(net, dtype):
    """The inference network as a shape-generic module for torch.export: no branches on sizes.

    TransformerNet.forward and SpaceToDepthConv.forward pad only when a size needs it; traced
    with symbolic sizes those ``if`` s would be decided once for the example's size (an exported
    file that then fails on odd sizes: seen). Here every pad is always applied, with amounts
    computed from the shape (zero when nothing is needed), so the graph holds for any size.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from cvtools.style.network import SpaceToDepthConv

    def s2d(layer, x):
        h, w = x.shape[-2:]
        p, s = layer.pad, layer.block
        x = F.pad(x, (p, p, p, p), mode="reflect")
        x = F.pad(x, (0, (-x.shape[-1]) % s, 0, (-x.shape[-2]) % s))  # zeros: only reach cropped outputs
        weight, bias = layer.weights()
        return F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(x, s), weight, bias), s)[..., :h, :w]

    def conv(layer, x):
        return s2d(layer, x) if isinstance(layer, SpaceToDepthConv) else layer(x)

    class CenteredInstanceNorm(nn.Module):
        """Instance norm of ``x - c``, with c a per-channel estimate of the mean (over every 8th
        pixel in each direction): the same function (instance norm ignores a per-channel shift),
        but onnxruntime's InstanceNormalization loses accuracy as |mean| / std grows (measured:
        a channel at mean 100, std 0.01 came out 5x further from float64 than PyTorch; with the
        shift both are ~5e-7), which put the tiny test style 1.2e-4 away on a photo."""

        def __init__(self, norm):
            super().__init__()
            self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

        def forward(self, x):
            centre = x[:, :, ::8, ::8].mean(dim=(2, 3), keepdim=True)
            return F.instance_norm(x - centre, weight=self.weight, bias=self.bias, eps=self.eps)

    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, child_name, CenteredInstanceNorm(child))

    class StyleForm(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net.to(dtype)

        def forward(self, image):
            n = self.net
            h, w = image.shape[-2:]
            x = F.pad(image.to(dtype), (0, (-w) % 4, 0, (-h) % 4), mode="reflect")
            first = n.encoder[0]
            x = conv(first[0], x)
            for layer in list(first)[1:]:
                x = layer(x)
            for stage in list(n.encoder)[1:]:
                x = stage(x)
            y = conv(n.output, n.decoder(n.residuals(x)))
            return torch.sigmoid(y)[..., :h, :w].float()

    return StyleForm().eval()


def _backbone_form(backbone, dtype):
    """[0, 1] RGB -> logits (float32), the backbone's normalisation inside."""
    import torch
    from torch import nn

    pre = backbone.preprocessing

    class BackboneForm(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = backbone.model.to(dtype=dtype, memory_format=torch.contiguous_format)
            self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, image):
            return self.model(((image - self.mean) / self.std).to(dtype)).float()

    return BackboneForm().eval()


def _to_onnx(module, min_side: int, input_name: str, output_name: str, opset: Optional[int]):
    """torch.onnx.export (the dynamo exporter, the supported API) with dynamic batch, height
    and width → an onnx ModelProto."""
    import torch

    require_exporter()
    # The example must not have size 1 (or 0) anywhere dynamic: torch.export specialises those.
    side = max(min_side, 32) + 3  # not a multiple of 4: the padding paths are traced too
    example = torch.rand(2, 3, side, side + 4)
    batch = torch.export.Dim("batch", min=1)
    height = torch.export.Dim("height", min=min_side)
    width = torch.export.Dim("width", min=min_side)
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                module, (example,), dynamo=True, input_names=[input_name], output_names=[output_name],
                dynamic_shapes={"image": {0: batch, 2: height, 3: width}}, opset_version=opset,
                verbose=False, optimize=True, external_data=False)
    except Exception as exc:
        raise CvtoolsError(f"the ONNX export failed ({type(exc).__name__}: {one_line(exc, 300)})") from None
    return program.model_proto


# ---------------------------------------------------------------------------- reports


@dataclass
class CheckResult:
    """onnxruntime against PyTorch on one image."""

    image: str  # a file name, or "synthetic WxH"
    size: Tuple[int, int]  # (width, height)
    max_abs_diff: float
    bound: float
    note: str = ""  # fp16: PyTorch's own fp16 error behind the bound; backbones: top-1 agreement

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.bound


@dataclass
class ExportReport:
    path: Path
    sha256: str
    bytes: int
    kind: str  # "style" or "backbone"
    name: str
    precision: str
    opset: int
    seconds: float  # export + check
    metadata: Dict[str, str] = field(default_factory=dict)
    checks: List[CheckResult] = field(default_factory=list)
    reference: str = ""  # what the checks compared against

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def check_bound(precision: str, torch_fp16_error: float = 0.0, scale: float = 1.0) -> float:
    """How far the exported file's output may be from PyTorch's fp32 output.

    fp32: 1e-4 (times ``scale``, the largest |output|, for logits). The two runtimes compute the
    same fp32 arithmetic in other orders; measured differences are ~1e-6 on outputs in [0, 1].
    fp16: every layer rounds its activations to 11 significant bits, so the file's distance to the
    fp32 output is the network's own fp16 error, which depends on the image and the style (up to
    ~2e-2 measured where the sigmoid is steep). PyTorch's fp16 network on the same image measures
    that error (``torch_fp16_error``, max |fp16 - fp32|); an fp16 file computed in another order
    rounds differently but no worse, so it must stay within FP16_FACTOR times that, and never
    below FP16_FLOOR (a few output rounding steps) times ``scale``.
    """
    if precision == "fp32":
        return FP32_BOUND * max(1.0, scale)
    return max(FP16_FACTOR * torch_fp16_error, FP16_FLOOR * max(1.0, scale))


def default_check_images() -> List[Tuple[str, object]]:
    """Three photos of different sizes: the shipped samples (512×512, 451×300, 640×427), or
    three synthetic images of those sizes if they are missing."""
    import torch

    from cvtools import SAMPLES_DIR as root
    from cvtools.io.decode import load_image, pil_to_tensor
    names = ("astronaut.jpg", "chelsea.jpg", "rocket.jpg")
    if all((root / n).is_file() for n in names):
        try:
            return [(n, pil_to_tensor(load_image(root / n).rgb)) for n in names]
        except CvtoolsError:
            pass
    g = torch.Generator().manual_seed(0)
    out = []
    for w, h in ((512, 512), (451, 300), (640, 427)):
        # smooth colour fields plus fine noise: a photo's mix of flat areas and texture
        coarse = torch.rand(1, 3, max(2, h // 32), max(2, w // 32), generator=g)
        smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
        out.append((f"synthetic {w}x{h}", (smooth + 0.1 * torch.rand(3, h, w, generator=g)).clamp(0, 1)))
    return out


def load_check_images(paths: Sequence[Union[str, os.PathLike]]) -> List[Tuple[str, object]]:
    from cvtools.io.decode import load_image, pil_to_tensor

    return [(Path(p).name, pil_to_tensor(load_image(p).rgb)) for p in paths]


def _run(session, x):
    import numpy as np
    import torch

    arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: arr})[0])


def _check(session, images, reference_fp32, reference_fp16, precision, logits=False) -> List[CheckResult]:
    import torch

    results = []
    for label, img in images:
        x = img[None] if img.dim() == 3 else img
        with torch.inference_mode():
            ref = reference_fp32(x).float()
            ours = _run(session, x)
            if ours.shape != ref.shape:
                raise CvtoolsError(f"the exported file gives shape {tuple(ours.shape)} on {label}, PyTorch "
                                   f"{tuple(ref.shape)}")
            diff = float((ours - ref).abs().max()) if torch.isfinite(ours).all() else float("inf")
            scale = float(ref.abs().max()) if logits else 1.0
            note, own = "", 0.0
            if precision == "fp16":
                own = float((reference_fp16(x).float() - ref).abs().max())
                note = f"PyTorch fp16: {own:.2e}"
            if logits:
                agree = float((ours.argmax(1) == ref.argmax(1)).float().mean())
                note = "; ".join(filter(None, [note, f"top-1 agrees {agree:.0%}"]))
        results.append(CheckResult(label, (int(x.shape[-1]), int(x.shape[-2])), diff,
                                   check_bound(precision, own, scale), note))
    return results


# ---------------------------------------------------------------------------- writing


def check_target(path, overwrite: bool = False, inputs: Sequence[Tuple[str, object]] = ()) -> Path:
    """``path`` when an export may be written there, checked before any export work (which takes
    seconds): a .onnx name, not a directory, not one of ``inputs`` ((what, path) pairs: the
    check images, the style's files; never replaced, even with ``overwrite``), not an existing
    file unless ``overwrite``, in a folder that exists or can be made, and is writable."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise UsageError(f"{safe_path(path)}: the output must be a .onnx file")
    if path.is_dir():
        raise UsageError(f"{safe_path(path)}: is a directory; give a file name ending in .onnx")
    for what, source in inputs:
        if source is not None and _same_file(path, source):
            raise UsageError(f"{safe_path(path)}: is {what}, an input of this export; choose another output name")
    if path.exists() and not overwrite:
        raise UsageError(f"{safe_path(path)}: exists; pass overwrite=True to replace it", param="overwrite")
    problem = _folder_problem(path.parent)
    if problem:
        raise ImageError(path, problem)
    return path


def _same_file(a, b) -> bool:
    """Whether two paths name one file (the same path, a symbolic link to it, or a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _folder_problem(folder: Path) -> Optional[str]:
    """Why a file cannot be written into ``folder`` (made first if missing), or None: the nearest
    existing folder on its path must be a writable directory."""
    here = Path(folder)
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        return f"cannot create the output directory: {safe_path(here)} is a file"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"cannot write there: {safe_path(here)} is not writable"
    try:  # os.access says yes to root everywhere: /proc, /sys, a read-only mount refuse only a real file
        fd, probe = tempfile.mkstemp(prefix=".cvtools-probe-", dir=here)
    except OSError as exc:
        return f"cannot write there: {safe_path(here)} takes no files ({exc.strerror or one_line(exc)})"
    os.close(fd)
    os.unlink(probe)
    return None


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r} for export; use fp32 or fp16")
    return precision


def _check_opset(opset: Optional[int]) -> Optional[int]:
    if opset is None:
        return None
    onnx, _ = require_exporter()
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not 18 <= opset <= newest:
        raise UsageError(f"opset {opset!r} is not supported; use 18 to {newest} (the exporter writes opset 18+)")
    return opset


def _opset_of(proto) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _write(proto, path: Path, metadata: Dict[str, str], overwrite: bool, verify) -> Tuple[str, int, list]:
    """Add the metadata, save atomically; ``verify(tmp_path)`` runs on the written file before
    it is moved into place (a failed check leaves nothing behind). Returns (sha256, bytes, checks)."""
    import onnx

    from cvtools.io.atomic import atomic_write
    from cvtools.weights import sha256_file

    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = "cvtools"
    from cvtools import __version__

    proto.producer_version = __version__
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise CvtoolsError(f"the exported model does not pass the ONNX checker ({one_line(exc, 200)})") from None
    out = {}

    def write(tmp):
        onnx.save_model(proto, tmp)
        out["checks"] = verify(tmp) if verify else []
        out["sha256"] = sha256_file(tmp)
        out["bytes"] = os.path.getsize(tmp)

    atomic_write(path, write, overwrite=overwrite)
    return out["sha256"], out["bytes"], out["checks"]


def _versions() -> Dict[str, str]:
    import torch

    from cvtools import __version__

    meta = {"cvtools_version": __version__, "torch_version": torch.__version__}
    try:
        import onnxscript

        meta["onnxscript_version"] = onnxscript.__version__
    except (ImportError, AttributeError):
        pass
    return meta


def _failed(report: ExportReport) -> Optional[str]:
    bad = [c for c in report.checks if not c.ok]
    if not bad:
        return None
    c = bad[0]
    return (f"onnxruntime differs from PyTorch by {c.max_abs_diff:.2e} on {c.image} (bound {c.bound:.1e}); "
            "the file was not written")


# ---------------------------------------------------------------------------- styles


def _validated(precision, path, overwrite, opset, check, check_images, inputs=()):
    """Every export's arguments checked, and the tools it needs present, before any work
    (``inputs``: the files it reads, besides the check images, as (what, path) pairs)."""
    precision = _check_precision(precision)
    path = check_target(path, overwrite, list(inputs) + _image_inputs(check_images if check else None))
    opset = _check_opset(opset)
    require_exporter()
    if check:
        require_onnxruntime()
    return precision, path, opset, (_images(check_images) if check else [])


def _image_inputs(check_images) -> List[Tuple[str, object]]:
    return [("a check image", item) for item in check_images or () if isinstance(item, (str, os.PathLike))]


def _style_inputs(record) -> List[Tuple[str, object]]:
    files = [("the style's record", record.path)]
    if record.weights.get("file"):
        files.append(("the style's weights", record.weights_path))
    return files


def export_style(style, path, precision: str = "fp32", opset: Optional[int] = None, overwrite: bool = False,
                 check: bool = True, check_images: Optional[Sequence] = None,
                 on_note: Optional[Callable[[str], None]] = None) -> ExportReport:
    """Export a style (a bundled name, a .json record, a .safetensors file or a StyleRecord) to
    ``path`` (.onnx). ``check``: onnxruntime against PyTorch on ``check_images`` (paths, or
    (label, 3×H×W tensor) pairs; default :func:`default_check_images`), before the file is moved
    into place; a check over its bound raises CvtoolsError and writes nothing.
    ``on_note``: called with a short note per stage (export, check)."""
    from cvtools.style.records import resolve_style
    from cvtools.weights import sha256_file

    record = resolve_style(style)  # no torch yet: a bad style or target is refused at once
    precision, path, opset, images = _validated(precision, path, overwrite, opset, check, check_images,
                                                _style_inputs(record))
    import torch

    net = record.load_network(device="cpu")  # verifies the weights' SHA-256 against the record
    started = time.perf_counter()
    dtype = torch.float16 if precision == "fp16" else torch.float32
    (on_note or _quiet)(f"exporting {record.name} ({precision})")
    proto = _to_onnx(_style_form(net.for_inference(space_to_depth=True), dtype), MIN_STYLE_SIDE,
                     "image", "stylized", opset)
    weights_sha = record.weights.get("sha256") or sha256_file(record.weights_path)
    meta = {
        "cvtools_kind": "style",
        "name": record.name,
        "title": record.title,
        "artist": record.artist,
        "year": str(record.year),
        "provenance": json.dumps(record.provenance, ensure_ascii=False, sort_keys=True),
        "weights_sha256": weights_sha,
        "network": json.dumps({"width": net.width, "residual_blocks": net.residual_blocks}),
        "record": json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True),
        "precision": precision,
        "opset": str(_opset_of(proto)),
        "form": "sub-pixel decoder; 9x9 convolutions as 3x3 convolutions on 4x4 space-to-depth blocks",
        "input": f"image: float32 N x 3 x H x W, RGB in [0, 1], H and W >= {MIN_STYLE_SIDE}",
        "output": "stylized: float32 N x 3 x H x W in [0, 1]",
        **_versions(),
    }

    def verify(tmp):
        if not check:
            return []
        from cvtools.style.stylize import Stylizer

        (on_note or _quiet)("checking with onnxruntime against PyTorch")
        shipped = Stylizer(record, device="cpu", precision="fp32")  # the CPU path cvtools runs
        half = net.for_inference(space_to_depth=True).half() if precision == "fp16" else None
        return _check(cpu_session(tmp), images, shipped.stylize_tensor,
                      (lambda x: half(x.half())) if half is not None else None, precision)

    report = ExportReport(path=path, sha256="", bytes=0, kind="style", name=record.name, precision=precision,
                          opset=_opset_of(proto), seconds=0.0, metadata=meta,
                          reference="PyTorch Stylizer, CPU fp32" + (" (and PyTorch fp16 for the bound)"
                                                                    if precision == "fp16" else ""))
    report.sha256, report.bytes, report.checks = _write(proto, path, meta, overwrite, _guard(verify, report))
    report.seconds = time.perf_counter() - started
    return report


def _guard(verify, report):
    """verify, raising (so that nothing is written) when a check is over its bound."""

    def run(tmp):
        checks = verify(tmp)
        report.checks = checks
        message = _failed(report)
        if message:
            raise CvtoolsError(f"{safe_path(report.path)}: {message}")
        return checks

    return run


def _images(check_images):
    if check_images is None:
        return default_check_images()
    items = list(check_images)
    if not items:
        raise UsageError("no images to check the export on")
    if all(isinstance(i, tuple) for i in items):
        return items
    return load_check_images(items)


def _quiet(message: str) -> None:
    pass


# ---------------------------------------------------------------------------- backbones


def export_backbone(name, path, precision: str = "fp32", opset: Optional[int] = None, overwrite: bool = False,
                    weights: Optional[str] = None, check: bool = True, check_images: Optional[Sequence] = None,
                    on_note: Optional[Callable[[str], None]] = None) -> ExportReport:
    """Export a backbone's classifier (BatchNorm folded, normalisation inside) to ``path``:
    [0, 1] RGB N×3×H×W → ImageNet logits, checked like :func:`export_style` (logits within 1e-4
    of their scale in fp32)."""
    import copy

    weights_file = [] if weights in (None, "", "random", "default") else [("the backbone's weights", weights)]
    precision, path, opset, images = _validated(precision, path, overwrite, opset, check, check_images, weights_file)
    import torch

    from cvtools.backbones import load_backbone

    backbone = load_backbone(name, device="cpu", precision="fp32", weights=weights)
    started = time.perf_counter()
    dtype = torch.float16 if precision == "fp16" else torch.float32
    (on_note or _quiet)(f"exporting {name} ({precision})")
    exported = copy.copy(backbone)
    exported.model = copy.deepcopy(backbone.model)
    proto = _to_onnx(_backbone_form(exported, dtype), backbone.min_size, "image", "logits", opset)
    pre = backbone.preprocessing
    meta = {
        "cvtools_kind": "backbone",
        "name": name,
        "weights": backbone.weights_desc,
        "fused": str(bool(backbone.fused)),
        "preprocessing": json.dumps({"mean": list(pre.mean), "std": list(pre.std), "resize_size": pre.resize_size,
                                     "crop_size": pre.crop_size, "interpolation": pre.interpolation,
                                     "normalisation": "inside the graph"}),
        "categories": json.dumps(list(backbone.categories), ensure_ascii=False),
        "precision": precision,
        "opset": str(_opset_of(proto)),
        "input": f"image: float32 N x 3 x H x W, RGB in [0, 1], H and W >= {backbone.min_size} "
                 f"(evaluated at {pre.crop_size}x{pre.crop_size})",
        "output": f"logits: float32 N x {len(backbone.categories)} (ImageNet classes, names in 'categories')",
        **_versions(),
    }

    def verify(tmp):
        if not check:
            return []
        (on_note or _quiet)("checking with onnxruntime against PyTorch")
        half = None
        if precision == "fp16":
            half = copy.deepcopy(backbone.model).to(dtype=torch.float16, memory_format=torch.contiguous_format)

        def fp16(x):
            return half(backbone.normalize(x.float()).half())

        return _check(cpu_session(tmp), images, backbone, fp16 if half is not None else None, precision, logits=True)

    report = ExportReport(path=path, sha256="", bytes=0, kind="backbone", name=name, precision=precision,
                          opset=_opset_of(proto), seconds=0.0, metadata=meta, reference="PyTorch backbone, CPU fp32")
    report.sha256, report.bytes, report.checks = _write(proto, path, meta, overwrite, _guard(verify, report))
    report.seconds = time.perf_counter() - started
    return report


def read_metadata(path) -> Dict[str, str]:
    """The metadata_props of an ONNX file (without loading its weights into a session)."""
    onnx, _ = require_exporter()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise CvtoolsError(f"{safe_path(path)}: not a readable ONNX file ({one_line(exc, 200)})") from None
    return {p.key: p.value for p in model.metadata_props}


# ---------------------------------------------------------------------------- the onnxruntime engine


def cache_dir() -> Path:
    """Where exported styles are kept for ``--engine onnxruntime``: $CVTOOLS_CACHE_DIR, else
    $XDG_CACHE_HOME/cvtools, else ~/.cache/cvtools (an ``onnx/`` folder inside)."""
    base = os.environ.get("CVTOOLS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "cvtools")
    return Path(base) / "onnx"


def cached_style_export(record, precision: str = "fp32", on_note: Optional[Callable[[str], None]] = None) -> Path:
    """The exported ONNX file of a style record, made once and kept in :func:`cache_dir`.

    The file name holds the weights' SHA-256 and the versions of cvtools, torch and the exporter,
    so a retrained style or an upgrade exports anew. Next to each file its SHA-256 is kept and
    checked before use (a damaged or replaced cache file is exported again). The first export is
    checked against PyTorch on the check images like ``cvtools export``."""
    import torch

    from cvtools import __version__
    from cvtools.weights import sha256_file

    weights_sha = sha256_file(record.weights_path)  # the file as it is now, whatever the record says
    if record.weights.get("sha256") and record.weights["sha256"].lower() != weights_sha:
        record.load_network()  # the one-line checksum error
    _, onnxscript = require_exporter()
    tag = f"cvtools{__version__}-torch{torch.__version__}-onnxscript{getattr(onnxscript, '__version__', '?')}"
    safe_tag = "".join(c if c.isalnum() or c in ".-_" else "_" for c in tag)
    path = cache_dir() / f"{weights_sha[:32]}-{precision}-{safe_tag}.onnx"
    stamp = path.with_name(path.name + ".sha256")
    if path.is_file() and stamp.is_file():
        try:
            if stamp.read_text().strip() == sha256_file(path):
                return path
        except OSError:
            pass
    (on_note or _quiet)(f"exporting {record.name} to ONNX once (kept in {safe_path(path.parent)})")
    report = export_style(record, path, precision=precision, overwrite=True, check=True)
    from cvtools.io.atomic import atomic_write

    atomic_write(stamp, lambda tmp: Path(tmp).write_text(report.sha256 + "\n"), overwrite=True)
    return path


# ---------------------------------------------------------------------------- the any-painting network

#: The smallest photo side the exported transformer takes: with the network's stride of 8 every
#: size from 16 up is padded by reflection (as PyTorch does) and the deepest maps are ≥ 2×2.
MIN_ARBITRARY_SIDE = 16
#: The smallest painting side the exported encoder takes (Lite0's stride 32 leaves 1×1 maps).
MIN_ENCODER_SIDE = 32
#: fp32 embeddings must match PyTorch within this times their largest |value| (like logits: the
#: statistics are sums of 65k+ fp32 values in another order; measured ~1e-6 of the scale).
EMBEDDING_RELATIVE_BOUND = 1e-4


def arbitrary_paths(path) -> Tuple[Path, Path]:
    """The two files ``export_arbitrary(path=NAME.onnx)`` writes: NAME_encoder.onnx and
    NAME_transformer.onnx beside it."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise UsageError(f"{safe_path(path)}: the output must be a .onnx name (NAME.onnx gives "
                         "NAME_encoder.onnx and NAME_transformer.onnx)")
    return path.with_name(f"{path.stem}_encoder.onnx"), path.with_name(f"{path.stem}_transformer.onnx")


def _instance_norm_params(x, params, offset: int, channels: int, eps: float = 1e-5):
    """Instance norm of ``x`` with gamma/beta from columns of ``params`` (N×P), branch-free, with
    a per-channel estimate of the mean taken out first (see _style_form's CenteredInstanceNorm:
    onnxruntime's reductions then keep PyTorch's accuracy)."""
    import torch

    gamma = params[:, offset:offset + channels, None, None]
    beta = params[:, offset + channels:offset + 2 * channels, None, None]
    x = x - x[:, :, ::8, ::8].mean(dim=(2, 3), keepdim=True)
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) * (torch.rsqrt(var + eps) * gamma) + beta


def _arbitrary_transformer_form(net):
    """(image N×3×H×W, embedding N×D) → stylized, the heads inside; shape-generic for H, W ≥
    MIN_ARBITRARY_SIDE (every pad always applied, amounts from the shape)."""
    import torch.nn.functional as F
    from torch import nn

    transformer = net.transformer.for_inference()

    def conv(seq, x):  # _conv: [ReflectionPad2d] + Conv2d
        return seq(x)

    def stage(s, x, params):
        if s.subpixel is not None:
            w, b = s.subpixel.weights()
            x = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, b), 2)
        else:
            x = conv(s.conv, x)
        return F.relu(_instance_norm_params(x, params, s.norm.offset, s.norm.channels))

    def residual(block, y, params):  # CondResidual
        r = F.relu(_instance_norm_params(block.conv1(y), params, block.norm1.offset, block.norm1.channels))
        return y + _instance_norm_params(block.conv2(r), params, block.norm2.offset, block.norm2.channels)

    class TransformerForm(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = net.heads
            self.t = transformer

        def forward(self, image, embedding):
            t = self.t
            h, w = image.shape[-2:]
            params = self.heads(embedding)
            x = F.pad(image, (0, (-w) % t.stride, 0, (-h) % t.stride), mode="reflect")
            y = stage(t.stem, F.pixel_unshuffle(x, t.fold) if t.fold > 1 else x, params)
            for s in t.down:
                y = stage(s, y, params)
            for block in t.residuals:
                y = residual(block, y, params)
            for i, s in enumerate(t.up):
                y = stage(s, y, params)
                for blocks in t.up_residuals:  # decoder_blocks: after each up stage, as StyleTransformer
                    y = residual(blocks[i], y, params)
            return t.to_rgb(y)[..., :h, :w]

    return TransformerForm().eval()


def _arbitrary_encoder_form(net, backbone):
    """painting N×3×H×W in [0, 1] (short side resized to the encoder size outside) → N×D
    embedding: Lite0's normalisation, stem and blocks up to the deepest encoder layer, each
    layer's channel means and standard deviations, the MLP."""
    import copy

    import torch
    from torch import nn

    paths = [backbone.layer_paths[name] for name in net.config.encoder_layers]
    if not all(p.startswith("_blocks.") and p[8:].isdigit() for p in paths):
        raise CvtoolsError(f"the style encoder's layers {list(net.config.encoder_layers)} are not Lite blocks; "
                           "this network cannot be exported")
    taps = [int(p[8:]) for p in paths]
    model = copy.deepcopy(backbone.model).float().to(memory_format=torch.contiguous_format)
    pre = backbone.preprocessing

    class EncoderForm(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(model._conv_stem, model._bn0, model._stem_act)
            self.blocks = nn.ModuleList(list(model._blocks)[:max(taps) + 1])
            self.mlp = net.encoder.mlp
            self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, painting):
            x = self.stem((painting - self.mean) / self.std)
            found = {}
            for i, block in enumerate(self.blocks):
                x = block(x)
                if i in taps:
                    found[i] = x
            stats = []
            for i in taps:
                f = found[i]
                centre = f[:, :, ::8, ::8].mean(dim=(2, 3), keepdim=True)  # accuracy, as in the norms
                var, mean = torch.var_mean(f - centre, dim=(2, 3), unbiased=False)
                stats.append(torch.cat([mean + centre[:, :, 0, 0], (var + 1e-6).sqrt()], dim=1))
            return self.mlp(torch.cat(stats, dim=1))

    return EncoderForm().eval(), taps


def _to_onnx_inputs(module, examples, names, dynamic_shapes, output_name: str, opset: Optional[int]):
    """torch.onnx.export (dynamo) of a module with several inputs → an onnx ModelProto."""
    import torch

    require_exporter()
    import warnings

    try:
        with torch.no_grad(), warnings.catch_warnings():
            # "The axis name: batch will not be used, since it shares the same shape constraints
            # with another axis": image and embedding share the batch size, as intended
            warnings.filterwarnings("ignore", message=".*axis name.*")
            program = torch.onnx.export(
                module, tuple(examples), dynamo=True, input_names=list(names), output_names=[output_name],
                dynamic_shapes=dynamic_shapes, opset_version=opset, verbose=False, optimize=True,
                external_data=False)
    except Exception as exc:
        raise CvtoolsError(f"the ONNX export failed ({type(exc).__name__}: {one_line(exc, 300)})") from None
    return program.model_proto


def embedding_bound(reference) -> float:
    """How far an exported encoder's embedding may be from PyTorch's: EMBEDDING_RELATIVE_BOUND
    of the embedding's largest |value| (at least 1): the statistics are fp32 means over 16k-65k
    values per channel summed in another order (each ~1e-7 relative), then two small matrix
    products; measured differences are ~1e-6 of the scale, the bound leaves 100× room."""
    return EMBEDDING_RELATIVE_BOUND * max(1.0, float(reference.abs().max()))


def export_arbitrary(path, weights=None, sha256: Optional[str] = None, opset: Optional[int] = None,
                     overwrite: bool = False, check: bool = True, check_images: Optional[Sequence] = None,
                     on_note: Optional[Callable[[str], None]] = None) -> List[ExportReport]:
    """Export the any-painting network (issue 28) as two ONNX files: ``NAME_encoder.onnx`` and
    ``NAME_transformer.onnx`` for ``path`` = NAME.onnx (:func:`arbitrary_paths`).

    - encoder: input ``painting`` float32 N×3×H×W RGB in [0, 1] already resized to the
      network's encoder size (:func:`cvtools.style.arbitrary.encoder_shape`: the config's long
      side, or its short side; bilinear and antialiased; the resize stays outside the graph, as
      PyTorch's antialiased resize has no exact ONNX equivalent), H, W ≥ 32; output
      ``embedding`` N×D;
    - transformer: inputs ``image`` N×3×H×W in [0, 1] (H, W ≥ 16) and ``embedding`` N×D (one
      row per image; blends and strength are weighted means of embeddings, done outside); output
      ``stylized`` N×3×H×W in [0, 1]. The linear heads (embedding → every norm's gamma, beta)
      are inside.

    weights: the network's safetensors (None: the bundled one, its SHA-256 pinned). Checked like
    :func:`export_style` on ``check_images`` (default: three photos, each also used as a
    painting): embeddings within :func:`embedding_bound`, stylized images within 1e-4 (fp32).
    The metadata holds the architecture, the weights' SHA-256 and the bundled styles'
    embeddings (so that bundled names blend without PyTorch). Returns the two reports."""
    import torch

    from cvtools.style import arbitrary as arb
    from cvtools.weights import sha256_file

    encoder_path, transformer_path = arbitrary_paths(path)
    if weights is None:
        weights, sha256 = arb.bundled_weights()
    inputs = [("the network's weights", weights)] + _image_inputs(check_images if check else None)
    check_target(encoder_path, overwrite, inputs)
    check_target(transformer_path, overwrite, inputs)
    opset = _check_opset(opset)
    require_exporter()
    if check:
        require_onnxruntime()
    images = _images(check_images) if check else []
    stylizer = arb.ArbitraryStylizer(weights, device="cpu", sha256=sha256)  # SHA-256 and shapes checked
    config = stylizer.config
    weights_sha = sha256_file(weights)
    started = time.perf_counter()
    say = on_note or _quiet
    common = _arbitrary_metadata(weights, weights_sha, config, encoder_path, transformer_path)
    batch = torch.export.Dim("batch", min=1)
    pair = _ArbitraryExport(stylizer, images, common, batch, opset, overwrite, check, say)
    enc_report = pair.encoder(encoder_path)
    try:
        tr_report = pair.transformer(transformer_path)
    except BaseException:
        try:
            encoder_path.unlink()  # never half a pair
        except OSError:
            pass
        raise
    enc_report.seconds = tr_report.seconds = time.perf_counter() - started
    return [enc_report, tr_report]


def _arbitrary_metadata(weights, weights_sha, config, encoder_path, transformer_path) -> dict:
    """What both any-painting graphs record: the weights, the architecture, the bundled styles'
    embeddings (for the bundled weights), the two files and the versions."""
    from cvtools.style import arbitrary as arb

    embeddings = {}
    if Path(weights).resolve() == arb.bundled_weights()[0].resolve():
        embeddings = {name: [float(v) for v in arb.bundled_style_embedding(name)] for name in arb.bundled_embedding_names()}
    return {
        "weights_sha256": weights_sha,
        "config": config.to_json(),
        "embedding_dim": str(config.embedding_dim),
        "encoder_size": str(config.encoder_size),
        "encoder_long_side": str(config.encoder_long_side),
        "style_embeddings": json.dumps(embeddings),
        "precision": "fp32",
        "files": json.dumps({"encoder": encoder_path.name, "transformer": transformer_path.name}),
        **_versions(),
    }


class _ArbitraryExport:
    """:func:`export_arbitrary`'s two graphs, each exported, checked against PyTorch on
    ``images`` (when ``check``) and written: :meth:`encoder`, then :meth:`transformer`."""

    def __init__(self, stylizer, images, common, batch, opset, overwrite, check, say):
        self.stylizer, self.images, self.common, self.batch = stylizer, images, common, batch
        self.opset, self.overwrite, self.check, self.say = opset, overwrite, check, say

    def encoder(self, encoder_path) -> ExportReport:
        import torch

        from cvtools.style.arbitrary import MIN_ENCODER_SHORT_SIDE

        config, Dim = self.stylizer.config, torch.export.Dim
        if config.encoder_long_side:
            scale = (f"the long side is {config.encoder_long_side} px (but the short side at least "
                     f"{MIN_ENCODER_SHORT_SIDE} px)")
        else:
            scale = f"the short side is {config.encoder_size} px"
        self.say("exporting the any-painting style encoder (fp32)")
        encoder_form, _ = _arbitrary_encoder_form(self.stylizer.net, self.stylizer.backbone)
        example = torch.rand(2, 3, 67, 71)
        proto = _to_onnx_inputs(
            encoder_form, [example], ["painting"],
            {"painting": {0: self.batch, 2: Dim("height", min=MIN_ENCODER_SIDE),
                          3: Dim("width", min=MIN_ENCODER_SIDE)}},
            "embedding", self.opset)
        meta = dict(self.common, cvtools_kind="arbitrary_encoder", opset=str(_opset_of(proto)),
                    input=f"painting: float32 N x 3 x H x W, RGB in [0, 1], H and W >= {MIN_ENCODER_SIDE}, "
                          f"resized beforehand so that {scale}",
                    resize=f"outside the graph: scale so that {scale}, rounded to whole pixels, bilinear, "
                           "antialiased when shrinking (torch.nn.functional.interpolate(mode='bilinear', "
                           "align_corners=False, antialias=True)), clamp to [0, 1]",
                    trunk=f"{config.backbone} (BatchNorm folded) up to {config.encoder_layers[-1]}, "
                          "normalisation inside; layers " + ",".join(config.encoder_layers),
                    output=f"embedding: float32 N x {config.embedding_dim}")
        report = ExportReport(path=encoder_path, sha256="", bytes=0, kind="arbitrary encoder", name="any-painting",
                              precision="fp32", opset=_opset_of(proto), seconds=0.0, metadata=meta,
                              reference="PyTorch ArbitraryStylizer.encode, CPU fp32")
        report.sha256, report.bytes, report.checks = _write(
            proto, encoder_path, meta, self.overwrite, _guard(self._verify_encoder, report))
        return report

    def _verify_encoder(self, tmp):
        import torch

        from cvtools.style import arbitrary as arb

        if not self.check:
            return []
        self.say("checking the encoder with onnxruntime against PyTorch")
        session = cpu_session(tmp)
        out = []
        for label, img in self.images:
            x = arb.encoder_input(img[None].float(), self.stylizer.config)
            ref = self.stylizer.encode(img)
            ours = _run(session, x)[0]
            diff = float((ours - ref).abs().max()) if torch.isfinite(ours).all() else float("inf")
            out.append(CheckResult(label, (int(img.shape[-1]), int(img.shape[-2])), diff, embedding_bound(ref),
                                   f"embedding scale {float(ref.abs().max()):.2f}"))
        return out

    def transformer(self, transformer_path) -> ExportReport:
        import torch

        config, Dim = self.stylizer.config, torch.export.Dim
        self.say("exporting the any-painting transformer (fp32)")
        form = _arbitrary_transformer_form(self.stylizer.net)
        height = Dim("height", min=MIN_ARBITRARY_SIDE)
        width = Dim("width", min=MIN_ARBITRARY_SIDE)
        proto = _to_onnx_inputs(
            form, [torch.rand(2, 3, 35, 39), torch.randn(2, config.embedding_dim)], ["image", "embedding"],
            {"image": {0: self.batch, 2: height, 3: width}, "embedding": {0: self.batch}}, "stylized", self.opset)
        meta = dict(self.common, cvtools_kind="arbitrary_transformer", opset=str(_opset_of(proto)),
                    input=f"image: float32 N x 3 x H x W, RGB in [0, 1], H and W >= {MIN_ARBITRARY_SIDE}; "
                          f"embedding: float32 N x {config.embedding_dim} (one per image)",
                    output="stylized: float32 N x 3 x H x W in [0, 1]",
                    form="heads inside; upsampling stages as sub-pixel convolutions; conditional instance norms")
        report = ExportReport(path=transformer_path, sha256="", bytes=0, kind="arbitrary transformer",
                              name="any-painting", precision="fp32", opset=_opset_of(proto), seconds=0.0,
                              metadata=meta, reference="PyTorch ArbitraryStylizer.stylize, CPU fp32")
        report.sha256, report.bytes, report.checks = _write(
            proto, transformer_path, meta, self.overwrite, _guard(self._verify_transformer, report))
        return report

    def _verify_transformer(self, tmp):
        import torch

        if not self.check:
            return []
        self.say("checking the transformer with onnxruntime against PyTorch")
        session = cpu_session(tmp)
        images = self.images
        styles = [self.stylizer.encode(img) for _, img in images]
        out = []
        for i, (label, img) in enumerate(images):
            emb = styles[(i + 1) % len(styles)]  # another image's style: not the identity-like own one
            ref = self.stylizer.stylize(img, emb)
            feed = {"image": img[None].float().contiguous().numpy(), "embedding": emb[None].contiguous().numpy()}
            ours = torch.from_numpy(session.run(None, feed)[0])[0]
            diff = float((ours - ref).abs().max()) if torch.isfinite(ours).all() else float("inf")
            out.append(CheckResult(label, (int(img.shape[-1]), int(img.shape[-2])), diff, FP32_BOUND,
                                   f"style of {images[(i + 1) % len(images)][0]}"))
        return out


def cached_arbitrary_export(weights=None, sha256: Optional[str] = None,
                            on_note: Optional[Callable[[str], None]] = None) -> Tuple[Path, Path]:
    """(encoder, transformer) ONNX files of the any-painting network, exported once (checked
    against PyTorch) and kept in :func:`cache_dir`, named by the weights' SHA-256 and the
    versions that made them; each file's SHA-256 is kept beside it and checked before use."""
    import torch

    from cvtools import __version__
    from cvtools.style import arbitrary as arb
    from cvtools.weights import sha256_file

    if weights is None:
        weights, sha256 = arb.bundled_weights()
    weights_sha = sha256_file(weights)
    if sha256 and sha256.lower() != weights_sha:
        arb.load_network(weights, sha256)  # the one-line checksum error
    _, onnxscript = require_exporter()
    tag = f"cvtools{__version__}-torch{torch.__version__}-onnxscript{getattr(onnxscript, '__version__', '?')}"
    safe_tag = "".join(c if c.isalnum() or c in ".-_" else "_" for c in tag)
    # the bundled weights' graphs carry the record's style embeddings (their metadata): a record
    # re-encoded for the same weights must not be answered from graphs holding the old ones
    embeddings = ""
    if Path(weights).resolve() == arb.bundled_weights()[0].resolve():
        embeddings = json.dumps(arb.bundled_record().get("style_embeddings", {}), sort_keys=True)
    styles_tag = hashlib.sha256(embeddings.encode()).hexdigest()[:8]
    base = cache_dir() / f"arbitrary-{weights_sha[:32]}-e{styles_tag}-{safe_tag}.onnx"
    pair = arbitrary_paths(base)
    stamps = [p.with_name(p.name + ".sha256") for p in pair]
    try:
        if all(p.is_file() and s.is_file() and s.read_text().strip() == sha256_file(p) for p, s in zip(pair, stamps)):
            return pair
    except OSError:
        pass
    (on_note or _quiet)(f"exporting the any-painting network to ONNX once (kept in {safe_path(base.parent)})")
    reports = export_arbitrary(base, weights, sha256=sha256, overwrite=True, check=True)
    from cvtools.io.atomic import atomic_write

    for report, stamp in zip(reports, stamps):
        atomic_write(stamp, lambda tmp, r=report: Path(tmp).write_text(r.sha256 + "\n"), overwrite=True)
    return pair


def lossless_fp16(proto, min_elements: int = 1024):
    """Store every float32 initializer (of at least ``min_elements`` values) whose values fp16
    holds exactly as fp16, with a Cast back to float32 at the top of the graph: the same
    arithmetic, bit-identical outputs, smaller files. The bundled styles' weights are fp16, so
    all but the rearranged sub-pixel decoder weights (sums of fp16 values) qualify: 3.1 -> 1.9 MB.
    onnxruntime folds the casts when it loads the file."""
    return _fp16_storage(proto, min_elements, exact_only=True)


def rounded_fp16(proto, min_elements: int = 1024):
    """As :func:`lossless_fp16` for every float32 initializer of at least ``min_elements``
    values, rounding those fp16 does not hold (relative error ≤ 2^-11): still fp32 arithmetic,
    half the file, outputs that move slightly. For weights that are not fp16 already (Lite0's
    folded trunk in the any-painting encoder); the caller measures what it moves."""
    return _fp16_storage(proto, min_elements, exact_only=False)


def _fp16_storage(proto, min_elements: int, exact_only: bool):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts, halves = [], []
    for tensor in list(graph.initializer):
        if tensor.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(tensor)
        if values.size < min_elements or not np.isfinite(values).all() or np.abs(values).max() > 65000:
            continue
        if exact_only and not np.array_equal(values.astype(np.float16).astype(np.float32), values):
            continue
        half = numpy_helper.from_array(values.astype(np.float16), f"{tensor.name}__fp16")
        halves.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT,
                                      name=f"{tensor.name}__cast"))
        graph.initializer.remove(tensor)
    graph.initializer.extend(halves)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return proto
