"""train-style checkpoints (network, optimizer, step, history, the run's identity): written
atomically with a SHA-256 of their contents, and read as untrusted input: every value is
checked before anything is built from it."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Dict

import torch

from cvtools.errors import CvtoolsError, WeightsError, first_line, safe_path
from cvtools.style.train_config import MAX_STEPS, TrainConfig

#: "-2": checkpoints carry a SHA-256 of their contents ("-1" had none and is refused).
CHECKPOINT_FORMAT = "cvtools-train-style-2"
#: A checkpoint holds the network and Adam's two moments: ~1 GB at the largest network allowed.
MAX_CHECKPOINT_BYTES = 2 << 30


#: Less free space than this after a failed write: the disk was full (torch.save then says only
#: "[enforce fail at inline_container.cc] unexpected pos", never ENOSPC).
FULL_DISK_BYTES = 64 << 20


def atomic_torch_save(obj, path: Path) -> None:
    from cvtools.io.atomic import atomic_write

    with saving(path, "checkpoint"):
        atomic_write(path, lambda tmp: torch.save(obj, tmp))


@contextmanager
def saving(path: Path, what: str):
    """Writing one of a run's files: a full disk is said in one line (the run's last checkpoint,
    if any, is kept by the atomic write), not as torch's or safetensors' internal error."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if not _disk_full(Path(path), exc):
            raise
        raise CvtoolsError(f"{safe_path(path)}: cannot write the {what}: no space left on device") from None


def _disk_full(path: Path, exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
    except OSError:
        return False


def load_checkpoint(path) -> Dict:
    """A train-style checkpoint, checked before anything is built from it; any problem is one
    WeightsError line naming the file.

    Checked: the size, the format, the SHA-256 of the contents (a flipped byte or a truncated
    tensor is refused), the config (JSON, every field's type and range, a name that is one file
    name), the step, the history, and every tensor's shape against the network the config
    declares (computed without allocating it) and against Adam's state.
    """
    from cvtools.errors import one_line, safe_path

    path = Path(path)
    where = safe_path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise WeightsError(f"{where}: no such checkpoint") from None
    except OSError as exc:
        raise WeightsError(f"{where}: cannot read the checkpoint ({exc.strerror or exc})") from None
    if path.is_dir():
        raise WeightsError(f"{where}: is a directory, not a checkpoint")
    if size > MAX_CHECKPOINT_BYTES:
        raise WeightsError(f"{where}: {size:,} bytes is too large for a train-style checkpoint")
    from cvtools.weights import check_torch_zip, sniff_weights_format

    try:
        kind = sniff_weights_format(path)
    except OSError as exc:
        raise WeightsError(f"{where}: cannot read the checkpoint ({exc.strerror or exc})") from None
    if kind != "zip":
        raise WeightsError(f"{where}: not a train-style checkpoint ({'empty file' if not size else 'not a PyTorch zip file'})")
    check_torch_zip(path)  # nothing in it unpacks to more than the file holds
    try:
        with warnings.catch_warnings():  # a crafted file's pickle can make torch warn over many lines
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read: a one-line reason, nothing executed
        raise WeightsError(f"{where}: not a readable train-style checkpoint ({first_line(exc, 160)})") from None
    if not isinstance(obj, dict) or not str(obj.get("format", "")).startswith("cvtools-train-style"):
        raise WeightsError(f"{where}: not a cvtools train-style checkpoint")
    if obj["format"] != CHECKPOINT_FORMAT:
        raise WeightsError(f"{where}: written by another version of cvtools ({safe_path(obj['format'])}, "
                           f"this one reads {CHECKPOINT_FORMAT}); start a new run")
    try:
        _check_checkpoint(obj)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        reason = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise WeightsError(f"{where}: damaged or not a train-style checkpoint ({one_line(reason, 200)})") from None
    return obj


def _check_checkpoint(obj: Dict) -> None:
    """ValueError saying what is wrong with a loaded checkpoint (see :func:`load_checkpoint`)."""
    from cvtools.style.network import TransformerNet

    config = _check_contents(obj)
    # tensors: the declared network's shapes (computed on the meta device: nothing allocated)
    with torch.device("meta"):
        params = list(TransformerNet(config.width, config.residual_blocks).named_parameters())
    _check_model(obj["model"], params, config)
    _check_optimizer(obj["optimizer"], params)


def _check_contents(obj: Dict) -> TrainConfig:
    """The hash, then everything but the tensors (normalised in place); returns the config."""
    stored = obj.pop("sha256", None)
    if not isinstance(stored, str):
        raise ValueError("it carries no integrity hash")
    if content_digest(obj) != stored:
        raise ValueError("its contents do not match its SHA-256: the file was damaged or altered after it "
                         "was written, and cannot be resumed safely")
    if not isinstance(obj["config"], str):
        raise ValueError("its config is not text")
    try:
        config = TrainConfig.from_json(obj["config"])
    except json.JSONDecodeError:
        raise ValueError("its config is not JSON") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"its config: {exc}") from None
    if config.name is None:
        raise ValueError("its config names no style")
    step = obj["step"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
        raise ValueError(f"step {step!r} is not a whole number 0-{MAX_STEPS:,}")
    elapsed = obj.get("elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) or not 0 <= elapsed < 1e9:
        raise ValueError(f"elapsed {elapsed!r} is not a duration in seconds")
    obj["elapsed"] = float(elapsed)
    history = json.loads(obj.get("history", "[]")) if isinstance(obj.get("history", "[]"), str) else None
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ValueError("its history is not a list of records")
    obj["history"] = json.dumps(history)
    ident, changes = obj.get("identity", {}), obj.get("changes", [])
    if not isinstance(ident, dict) or not all(isinstance(v, (str, int)) for v in ident.values()):
        raise ValueError("its identity is not a table")
    if not isinstance(changes, list) or not all(isinstance(v, dict) for v in changes):
        raise ValueError("its changes are not a list")
    return config


def _check_model(model, params, config: TrainConfig) -> None:
    """The network's tensors: the declared network's names and shapes, finite floats."""
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise ValueError("its model is not a table of tensors")
    from cvtools.style.records import state_shape_problem

    problem = state_shape_problem({k: tuple(v.shape) for k, v in model.items()},
                                  {k: tuple(p.shape) for k, p in params})
    if problem:
        raise ValueError(f"its network does not fit width {config.width:g} with {config.residual_blocks} "
                         f"residual blocks: {problem}")
    if not all(v.is_floating_point() and bool(torch.isfinite(v).all()) for v in model.values()):
        raise ValueError("its network has non-float, NaN or infinite values")


def _check_optimizer(opt, params) -> None:
    """Adam's state: one parameter group over the network's parameters, moments of their shapes."""
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
        raise ValueError("its optimizer state is not Adam's")
    groups = opt["param_groups"]
    if len(groups) != 1 or not isinstance(groups[0], dict) or groups[0].get("params") != list(range(len(params))):
        raise ValueError("its optimizer state is for another network")
    for index, state in opt["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(state, dict):
            raise ValueError("its optimizer state is for another network")
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"its optimizer state {key!r} is not a tensor")
            if value.dim() and tuple(value.shape) != tuple(params[index][1].shape):
                raise ValueError(f"its optimizer state for {params[index][0]!r} has shape {list(value.shape)}")


def content_digest(obj) -> str:
    """SHA-256 of a checkpoint's contents: tensors (dtype, shape, bytes), text and numbers, in a
    fixed order. Computed over what was saved and over what is loaded back, so any change to a
    value (a flipped bit in a tensor, an edited config) is detected, whatever the container."""
    h = hashlib.sha256()

    def feed(x, depth):
        if depth > 16:
            raise ValueError("nested too deeply")
        if isinstance(x, dict):
            h.update(b"{%d:" % len(x))
            for k in sorted(x, key=repr):
                feed(k, depth + 1)
                feed(x[k], depth + 1)
        elif isinstance(x, (list, tuple)):
            h.update(b"[%d:" % len(x))
            for v in x:
                feed(v, depth + 1)
        elif isinstance(x, torch.Tensor):
            t = x.detach().to("cpu").contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(x.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy())
        elif x is None or isinstance(x, (bool, int, float, str)):
            h.update(repr((type(x).__name__, x)).encode("utf-8", "surrogateescape") + b";")
        else:
            raise ValueError(f"unexpected {type(x).__name__} in the checkpoint")

    feed(obj, 0)
    return h.hexdigest()
