"""The settings of a train-style run (:class:`TrainConfig`, every field checked), what a run
returns (:class:`TrainResult`) and how it stops early (:class:`TrainingStopped`); the defaults
that depend on the machine or the run's length."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from cvtools.errors import CvtoolsError, UsageError

MAX_STEPS = 10_000_000

#: Settings of this invocation (the machine, where to write, the preview photo): a resumed run
#: takes today's, never the run's; every other setting left out is the run's.
LOCAL_SETTINGS = ("output", "device", "workers", "precision", "compile", "preview")
#: Settings a resumed run may change without becoming another run: its name, its length and
#: its bookkeeping. Every other field of TrainConfig is a run setting (RUN_SETTINGS, below).
FREE_SETTINGS = ("name", "steps", "checkpoint_every", "preview_every", "log_every", "title", "artist", "year",
                 "provenance")
#: The network's shape is the checkpoint's: it never changes on resume.
ARCHITECTURE = ("width", "residual_blocks")

#: ``compile=None`` compiles the style network for GPU runs at least this long. Measured on an
#: H200 (batch 64, 256 px): compiling costs ~38 s once and takes a step from 51.8 to 25.9 ms,
#: so it pays for itself after ~1,500 steps; shorter runs stay eager (BENCHMARKS.md).
AUTO_COMPILE_STEPS = 2000


class TrainingStopped(CvtoolsError):
    """Training ended early (interrupted or diverged); the message says where the checkpoint is."""

    def __init__(self, message: str, checkpoint: Optional[Path], exit_code: int = 1, param=None):
        super().__init__(message, param=param)
        self.checkpoint = checkpoint
        self.exit_code = exit_code


@dataclass
class TrainConfig:
    style_image: str
    photos: str
    name: Optional[str]  # None: the style image's name
    output: str = "."
    # loss network
    backbone: str = "efficientnet_lite0"
    backbone_weights: Optional[str] = None
    style_layers: Optional[List[str]] = None  # None: the backbone's defaults.style
    style_layer_weights: Optional[List[float]] = None  # relative, one per style layer
    content_layer: Optional[str] = None  # None: the backbone's defaults.content
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e-4
    #: weight of the stability term (0: off): the network's output on a slightly moved photo
    #: (shift, zoom, turn: :func:`stability_pair`) should be its output on the photo, moved the
    #: same way, so that video frames do not flicker (mean squared difference in [0, 1] RGB)
    temporal_weight: float = 0.0
    #: share (0-1) of the stability term's photos whose move also has a moving object: a disc of
    #: the photo moved on its own (:func:`stability_pair`), so the network learns to keep its
    #: strokes on what moves in front of the camera's motion, not only under it
    temporal_local: float = 0.0
    #: the stability term's photos also ripple by up to this many px (a smooth random field:
    #: a face that talks, fur in the wind; 0: off)
    temporal_deform: float = 0.0
    #: options of the stronger style objective (cvtools.style.losses.check_objective), e.g.
    #: {"transform": "swag", "tone_weight": 20}; None: plain Grams in the main backbone
    objective: Optional[Dict] = None
    # data and schedule
    steps: int = 4000
    batch_size: int = 16
    image_size: int = 256
    style_size: int = 512
    crop_scale: tuple = (0.3, 1.0)
    lr: float = 1e-3
    seed: int = 0
    # network
    width: float = 0.5
    residual_blocks: int = 5
    #: start from these weights (a style's .safetensors of the same width and blocks, e.g. a
    #: bundled style's, to fine-tune it) instead of random ones; None: random
    init_weights: Optional[str] = None
    # bookkeeping
    checkpoint_every: int = 500
    preview_every: Optional[int] = None  # None: about PREVIEWS_PER_RUN previews over the run; 0: none
    preview: Optional[str] = None
    log_every: int = 10
    # machine
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on GPUs, fp32 on the CPU
    workers: Optional[int] = None
    compile: Optional[bool] = None  # None: auto (GPU runs of AUTO_COMPILE_STEPS steps or more)
    # about the painting (copied into the record)
    title: str = ""
    artist: str = ""
    year: str = ""
    provenance: Dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        """A config from JSON (a checkpoint's), every field checked: ValueError saying which
        field is wrong, never an exception from deep inside training later."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("its JSON is nested too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in ("style_image", "photos", "name") if k not in data]
        if missing:
            raise ValueError(f"no {missing[0]!r}")
        if isinstance(data.get("crop_scale"), list):
            data["crop_scale"] = tuple(data["crop_scale"])
        config = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        config.check()
        return config

    def check(self) -> "TrainConfig":
        """Every field's type and range (ValueError naming the first bad one). Run on every
        config, from the command line, the Python API or a checkpoint."""
        from cvtools.style.network import check_architecture

        _check_texts(self)
        _check_layers(self)
        _check_numbers(self)
        cs = self.crop_scale
        if (not isinstance(cs, (tuple, list)) or len(cs) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in cs)
                or not 0 < cs[0] <= cs[1] <= 1):
            raise ValueError(f"crop_scale {cs!r} must be two numbers 0 < low <= high <= 1")
        self.crop_scale = (float(cs[0]), float(cs[1]))
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision {self.precision!r} is not auto, fp32, bf16 or fp16")
        if not (self.compile is None or isinstance(self.compile, bool)):
            raise ValueError(f"compile {self.compile!r} is not true, false or null")
        if not isinstance(self.provenance, dict) or len(json.dumps(self.provenance)) > 65536:
            raise ValueError("provenance must be a small JSON object")
        check_architecture(self.width, self.residual_blocks)
        return self


def _check_texts(config: TrainConfig) -> None:
    """The text fields and the name (ValueError naming the first bad one)."""
    from cvtools.style.records import check_name

    def text(key, none_ok=False):
        v = getattr(config, key)
        if v is None and none_ok:
            return
        if not isinstance(v, str) or "\0" in v or len(v) > 4096:
            raise ValueError(f"{key} {v!r} is not usable text")

    for key in ("style_image", "photos", "output", "backbone", "device"):
        text(key)
    for key in ("backbone_weights", "content_layer", "preview", "init_weights"):
        text(key, none_ok=True)
    for key in ("title", "artist", "year"):
        text(key)
    if config.name is not None:
        check_name(config.name)


def _check_layers(config: TrainConfig) -> None:
    """The style layers and their weights: short lists of names and of numbers 0 or more."""
    for key in ("style_layers", "style_layer_weights"):
        v = getattr(config, key)
        if v is not None and (not isinstance(v, list) or not 1 <= len(v) <= 64):
            raise ValueError(f"{key} must be a list of 1-64 entries")
    if config.style_layers is not None and not all(isinstance(v, str) and len(v) < 200 for v in config.style_layers):
        raise ValueError("style_layers must be layer names")
    if config.style_layer_weights is not None and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in config.style_layer_weights):
        raise ValueError("style_layer_weights must be numbers, 0 or more")


def _check_numbers(config: TrainConfig) -> None:
    """The weights, the schedule and the bookkeeping: finite numbers in their ranges."""

    def number(key, lo, hi, integer=False, none_ok=False):
        v = getattr(config, key)
        if v is None and none_ok:
            return
        kind = int if integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
            raise ValueError(f"{key} {v!r} is not a {'whole ' if integer else ''}number")
        if not lo <= v <= hi:
            raise ValueError(f"{key} {v:g} is outside {lo:g}-{hi:g}")

    for key in ("content_weight", "style_weight", "tv_weight", "temporal_weight"):
        number(key, 0, 1e9)
    number("temporal_local", 0, 1)
    number("temporal_deform", 0, 16)
    number("lr", 1e-12, 10)
    number("steps", 1, MAX_STEPS, integer=True)
    number("batch_size", 1, 65536, integer=True)
    number("image_size", 32, 8192, integer=True)
    number("style_size", 32, 16384, integer=True)
    number("seed", 0, 2 ** 63 - 1, integer=True)
    number("checkpoint_every", 0, MAX_STEPS, integer=True)
    number("preview_every", 0, MAX_STEPS, integer=True, none_ok=True)
    number("log_every", 1, MAX_STEPS, integer=True)
    number("workers", 0, 1024, integer=True, none_ok=True)


#: Settings that define a run (painting, photos, loss, recipe, network: every field that is
#: neither free nor local, so a field added later counts by default). Resuming with any of them
#: changed would silently train another run than the one asked for: refused unless
#: ``new_settings`` (the painting and the photos are compared by content: see run_identity).
RUN_SETTINGS = tuple(k for k in TrainConfig.__dataclass_fields__ if k not in FREE_SETTINGS + LOCAL_SETTINGS)


@dataclass
class TrainResult:
    weights: Path
    record_path: Path
    checkpoint: Path
    steps: int
    final_losses: Dict[str, float]
    images_per_second: float
    seconds: float
    #: images/s after warm-up (cudnn autotuning, compilation, worker start-up excluded): the
    #: rate that scales with the run's length; equal to images_per_second for very short runs
    steady_images_per_second: float = 0.0
    #: the step this run started from (a resumed run's checkpoint step; 0 for a new run): it
    #: trained steps - first_step steps, and its rates are of those alone
    first_step: int = 0


def check_config(config: TrainConfig) -> None:
    try:
        config.check()
    except ValueError as exc:
        raise UsageError(f"training settings: {exc}") from None


def default_name(style_image: str) -> str:
    from cvtools.errors import safe_path
    from cvtools.style.records import check_name

    stem = Path(style_image).stem
    try:
        return check_name(stem)
    except ValueError:
        raise UsageError(f"{safe_path(style_image)}: its name cannot name a style; pass `name`", param="name") from None


def default_workers() -> int:
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, n - 1))


#: With ``preview_every=None`` a run writes about this many previews (at least one).
PREVIEWS_PER_RUN = 8


def default_preview_every(steps: int) -> int:
    """Preview interval giving about PREVIEWS_PER_RUN previews over ``steps`` (short runs too)."""
    return max(1, round(steps / PREVIEWS_PER_RUN))
