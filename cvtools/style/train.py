"""Train a style: the Python API behind ``cvtools train-style``.

>>> from cvtools.style.train import TrainConfig, train_style
>>> result = train_style(TrainConfig(style_image="starry.jpg", photos="photos/", name="starry"))
>>> result.weights, result.record_path          # NAME.safetensors and NAME.json in config.output

The loop: random crops of the photos (decoded in DataLoader workers) go through the
TransformerNet; the frozen, BatchNorm-fused backbone scores the results against the painting's
Gram matrices and the photos' content (:mod:`cvtools.style.losses`); Adam updates the network.

Reliability: the data order is a pure function of (seed, step), so ``resume`` continues the very
same run; checkpoints (network + optimizer + step) are written atomically every
``checkpoint_every`` steps and on Ctrl-C or SIGTERM; a NaN/inf loss stops training and keeps the
last good checkpoint. Files of an earlier run are never replaced unless asked (``overwrite``),
and a resumed run must be the same run (same painting, photos and recipe) unless asked
(``new_settings``). A checkpoint is untrusted input when read: it carries a SHA-256 of its
contents, and every value in it is checked (types, ranges, tensor shapes against the declared
network) before anything is built from it. For several GPUs the pieces are separate on purpose: ``sample_indices``
shards by rank, ``Trainer.step`` is one optimisation step, checkpoints come from ``Trainer``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from cvtools.errors import CvtoolsError, UsageError, WeightsError, first_line

#: "-2": checkpoints carry a SHA-256 of their contents ("-1" had none and is refused).
CHECKPOINT_FORMAT = "cvtools-train-style-2"
#: A checkpoint holds the network and Adam's two moments: ~1 GB at the largest network allowed.
MAX_CHECKPOINT_BYTES = 2 << 30
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
        from cvtools.style.records import check_name

        def number(key, lo, hi, integer=False, none_ok=False):
            v = getattr(self, key)
            if v is None and none_ok:
                return
            kind = int if integer else (int, float)
            if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
                raise ValueError(f"{key} {v!r} is not a {'whole ' if integer else ''}number")
            if not lo <= v <= hi:
                raise ValueError(f"{key} {v:g} is outside {lo:g}-{hi:g}")

        def text(key, none_ok=False):
            v = getattr(self, key)
            if v is None and none_ok:
                return
            if not isinstance(v, str) or "\0" in v or len(v) > 4096:
                raise ValueError(f"{key} {v!r} is not usable text")

        for key in ("style_image", "photos", "output", "backbone", "device"):
            text(key)
        for key in ("backbone_weights", "content_layer", "preview"):
            text(key, none_ok=True)
        for key in ("title", "artist", "year"):
            text(key)
        if self.name is not None:
            check_name(self.name)
        for key in ("style_layers", "style_layer_weights"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, list) or not 1 <= len(v) <= 64):
                raise ValueError(f"{key} must be a list of 1-64 entries")
        if self.style_layers is not None and not all(isinstance(v, str) and len(v) < 200 for v in self.style_layers):
            raise ValueError("style_layers must be layer names")
        if self.style_layer_weights is not None and not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in self.style_layer_weights):
            raise ValueError("style_layer_weights must be numbers, 0 or more")
        for key in ("content_weight", "style_weight", "tv_weight", "temporal_weight"):
            number(key, 0, 1e9)
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


# ---------------------------------------------------------------------------- data


def photo_files(folder, exclude=()) -> List[Path]:
    """The training photos under ``folder``, except any under the ``exclude`` folders (a run's
    own previews, when -o is inside the photo folder, must never become training photos)."""
    from cvtools.errors import safe_path
    from cvtools.io.discover import expand_inputs

    paths, problems = expand_inputs([str(folder)])
    skip = [os.path.abspath(e) + os.sep for e in exclude]
    paths = [p for p in paths if not any(os.path.abspath(p).startswith(s) for s in skip)]
    if problems or not paths:
        raise UsageError(f"{safe_path(folder)}: no photos to train on (give a folder of .jpg/.png images)")
    return paths


def run_identity(config: "TrainConfig", files: List[Path]) -> Dict:
    """What the run trains on, by content: the painting's SHA-256 and a digest of the photo list
    (paths relative to the folder, so a moved folder is the same run, and a folder that gained
    or lost photos is not). Saved in checkpoints and compared on resume."""
    from cvtools.weights import sha256_file

    root = os.path.abspath(config.photos)
    names = sorted(os.path.relpath(os.path.abspath(p), root) for p in files)
    ident = {"style_image": _file_digest(config.style_image, "style image"),
             "photos": hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest(),
             "photo_count": len(names)}
    w = config.backbone_weights
    if w and w != "random" and os.path.isfile(w):
        ident["backbone_weights"] = sha256_file(w)
    return ident


def _file_digest(path, what: str) -> str:
    from cvtools.errors import safe_path
    from cvtools.weights import sha256_file

    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise UsageError(f"{safe_path(path)}: no such {what}") from None
    except OSError as exc:
        raise UsageError(f"{safe_path(path)}: cannot read the {what} ({exc.strerror or exc})") from None


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def sample_indices(start_step: int, steps: int, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[int]:
    """Global sample numbers for steps [start_step, steps): a pure function of the step, so a
    resumed run sees exactly the data it would have seen. With ``world`` > 1 each rank takes its
    share of every global batch (batch_size is the global batch)."""
    per_rank = batch_size // world
    for step in range(start_step, steps):
        base = step * batch_size + rank * per_rank
        yield from range(base, base + per_rank)


class PhotoCrops(torch.utils.data.Dataset):
    """Sample ``k`` → a random resized crop (``size``², uint8 3×S×S) of photo ``perm_epoch[k % n]``.

    Crop, scale and flip come from a generator seeded by (seed, k). Decoded photos are cached per
    worker up to ``cache_bytes`` (small datasets decode once). Undecodable files are skipped
    deterministically (the next photo in the epoch's order is used) and reported once, to
    ``notes`` (None: not reported).
    """

    def __init__(self, files: List[Path], size: int, seed: int, scale=(0.3, 1.0), cache_bytes: int = 1 << 30,
                 notes: Optional[Callable[[str], None]] = None):
        self.files = list(files)
        self.size = int(size)
        self.seed = int(seed)
        self.scale = tuple(scale)
        self.cache_bytes = cache_bytes
        self._cache: Dict[int, object] = {}
        self._cached = 0
        self._perm = (None, None)
        self._bad = set()
        #: (index, ImageError) of the photos :meth:`preload` could not decode
        self.failures: List = []
        self.notes = notes

    def __getstate__(self):
        # DataLoader workers started by spawn (macOS, Windows) get a pickled copy: a callback
        # may not pickle, so theirs is None (forked workers keep it). Little is lost: preload
        # finds every undecodable photo before workers start; these notes are for photos that
        # broke during the run.
        return dict(self.__dict__, notes=None)

    def __len__(self):  # the sampler decides the length; this is one epoch
        return len(self.files)

    def _decode(self, i: int):
        """Photo ``i`` as RGB, at most 2× the crop size on its short side (larger never shows)."""
        from cvtools.io.decode import load_image

        im = load_image(self.files[i]).rgb
        short = min(im.size)
        limit = 2 * self.size
        if short > limit:
            from PIL import Image

            f = limit / short
            im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BILINEAR)
        return im

    def _photo(self, i: int):
        im = self._cache.get(i)
        if im is None:
            im = self._decode(i)
            nbytes = im.width * im.height * 3
            if self._cached + nbytes <= self.cache_bytes:
                self._cache[i] = im
                self._cached += nbytes
        return im

    def preload(self, budget: int = 2 << 30, threads: int = 8) -> int:
        """Decode photos into the cache now, in threads, before DataLoader workers start.

        Workers are forked with the cache already filled (shared copy-on-write), so each photo is
        decoded once per process instead of once per worker (8 workers per GPU used to decode
        every photo 8 times over before their caches warmed).
        Returns how many photos were cached. Undecodable files are noted in ``failures`` and
        skipped by ``__getitem__`` exactly as it would skip them itself, so the data order is
        unchanged.
        """
        from concurrent.futures import ThreadPoolExecutor

        from cvtools.errors import ImageError

        def load(i):
            try:
                return i, self._decode(i)
            except ImageError as exc:
                return i, exc

        with ThreadPoolExecutor(max(1, threads)) as pool:
            for i, im in pool.map(load, range(len(self.files))):
                if isinstance(im, ImageError):
                    self._bad.add(i)
                    self.failures.append((i, im))
                    continue
                nbytes = im.width * im.height * 3
                if self._cached + nbytes > budget:
                    continue  # (every photo is decoded once anyway: this finds the undecodable ones)
                self._cache[i] = im
                self._cached += nbytes
        return len(self._cache)

    def __getitem__(self, k: int) -> torch.Tensor:
        from PIL import Image

        from cvtools.errors import ImageError

        n = len(self.files)
        epoch, pos = divmod(int(k), n)
        if self._perm[0] != epoch:
            self._perm = (epoch, epoch_permutation(self.seed, epoch, n))
        perm = self._perm[1]
        rng = np.random.default_rng([self.seed, int(k)])
        for j in range(n):
            i = int(perm[(pos + j) % n])
            if i in self._bad:
                continue
            try:
                im = self._photo(i)
                break
            except ImageError as exc:
                self._bad.add(i)
                if self.notes is not None:
                    self.notes(f"skipping {exc}")
        else:
            raise UsageError("no photo in the training folder could be decoded")
        w, h = im.size
        area = w * h * rng.uniform(*self.scale)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = int(round(min(w, math.sqrt(area * aspect))))
        ch = int(round(min(h, math.sqrt(area / aspect))))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        crop = im.resize((self.size, self.size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch),
                         reducing_gap=2.0)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(crop, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)


class _IndexList(torch.utils.data.Sampler):
    def __init__(self, start_step, steps, batch_size, rank=0, world=1):
        self.args = (start_step, steps, batch_size, rank, world)

    def __iter__(self):
        return sample_indices(*self.args)

    def __len__(self):
        start, steps, batch, rank, world = self.args
        return max(0, steps - start) * (batch // world)


def make_loader(dataset, start_step, steps, batch_size, workers, pin_memory, rank=0, world=1):
    kwargs = {}
    if workers > 0:
        kwargs = dict(persistent_workers=False, prefetch_factor=4)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size // world, sampler=_IndexList(start_step, steps, batch_size, rank, world),
        num_workers=workers, pin_memory=pin_memory, drop_last=False, **kwargs)


# ---------------------------------------------------------------------------- trainer


def learning_rate(config: TrainConfig, step: int) -> float:
    """Short linear warm-up, then cosine decay to a tenth (a function of the step: resumable)."""
    warm = min(100, max(1, config.steps // 20))
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, config.steps - warm)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _config_for(config: TrainConfig, checkpoint: Optional[Dict]) -> TrainConfig:
    """``config`` checked, its name filled in, and its network's shape the checkpoint's."""
    _check_config(config)
    if config.name is None:
        config.name = _default_name(config.style_image)
    if checkpoint is not None:
        saved = TrainConfig.from_json(checkpoint["config"])
        if (saved.width, saved.residual_blocks) != (config.width, config.residual_blocks):
            raise UsageError(f"the checkpoint's network is width {saved.width:g} with {saved.residual_blocks} "
                             f"residual blocks, not {config.width:g} with {config.residual_blocks}")
    return config


def _autocast_dtype(precision: str, cuda: bool) -> Optional[torch.dtype]:
    """The autocast dtype for a TrainConfig.precision (None: plain fp32); auto is bf16 on GPUs."""
    if precision == "auto":
        return torch.bfloat16 if cuda else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _atomic_torch_save(obj, path: Path) -> None:
    from cvtools.io.atomic import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


#: the moves of the stability term, per photo, uniform in ±: shift (pixels), zoom (fraction),
#: turn (degrees). A video's frame-to-frame motion is mostly of this size (the synthetic clips
#: of cvtools.video.synthetic: pans of 0.5-2 px, zooms of 1.2 % per frame).
STABILITY_MOVES = {"shift": 2.0, "zoom": 0.02, "turn": 1.0}
#: pixels at the border left out of the stability term (where a move brings in reflected
#: content that the original photo does not have)
STABILITY_BORDER = 8


def _sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class StabilityPair:
    """The photos moved (``image``), and the same move for the outputs (:meth:`move`)."""

    image: torch.Tensor
    grid: torch.Tensor

    def move(self, y: torch.Tensor) -> torch.Tensor:
        return _sample(y, self.grid)

    def distance(self, y_moved: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared difference, in fp32, between the output of the moved photo and the
        moved output, inside the border."""
        b = STABILITY_BORDER
        d = y_moved.float() - self.move(y)
        if d.shape[-1] > 4 * b and d.shape[-2] > 4 * b:
            d = d[..., b:-b, b:-b]
        return d.pow(2).mean()


def stability_pair(x: torch.Tensor, generator: torch.Generator, moves: Optional[Dict[str, float]] = None) -> StabilityPair:
    """Each photo of the batch ``x`` (B×3×H×W in [0, 1]) moved by a small random similarity
    transform (bilinear, reflected at the borders): what consecutive video frames look like.
    The stability term of train-style (Gupta et al. 2017's idea: train the network to answer
    small moves with the same strokes, moved) needs no video: only still photos."""
    m = dict(STABILITY_MOVES, **(moves or {}))
    n, _, h, w = x.shape
    r = torch.rand(n, 4, generator=generator, dtype=torch.float64) * 2 - 1
    scale = 1 + m["zoom"] * r[:, 0]
    angle = torch.deg2rad(m["turn"] * r[:, 1])
    # affine_grid works in [-1, 1] units (align_corners=False: a pixel is 2/size wide)
    tx, ty = m["shift"] * r[:, 2] * 2 / w, m["shift"] * r[:, 3] * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    aspect = h / w  # a turn in pixels, not in the unit square
    theta = torch.stack([torch.stack([cos, -sin * aspect, tx], 1), torch.stack([sin / aspect, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.float().to(x.device), [n, 3, h, w], align_corners=False)
    image = _sample(x, grid).to(x.dtype)
    if x.is_contiguous(memory_format=torch.channels_last):
        image = image.contiguous(memory_format=torch.channels_last)
    return StabilityPair(image, grid)


class Trainer:
    """Owns the network, optimizer, loss and step counter of one training run."""

    def __init__(self, config: TrainConfig, resume=None, notes: Optional[Callable[[str], None]] = None):
        """``resume``: a checkpoint (a path, or what :func:`load_checkpoint` returned) whose
        network, optimizer and step to continue from; ``config`` is used as given (its width and
        residual blocks must be the checkpoint's). :func:`train_style` is what compares a
        resumed run's settings with the checkpoint's. ``notes``: called with one-line messages
        for the user (a failed compilation, a small batch per GPU); None: silent."""
        from cvtools import distributed
        from cvtools.backbones import resolve_device

        self.notes = notes
        self.history: List[Dict[str, float]] = []
        self.step_count = 0
        self.elapsed = 0.0
        #: what the run trains on (run_identity), saved in checkpoints; set by train_style
        self.identity: Dict = {}
        #: settings changed on resume (--resume-with-new-settings), kept in checkpoints and the record
        self.changes: List[Dict] = []
        checkpoint = load_checkpoint(resume) if isinstance(resume, (str, os.PathLike)) else resume
        self.config = c = _config_for(config, checkpoint)
        self.device = resolve_device(c.device)
        cuda = self.device.type == "cuda"
        self.amp_dtype = _autocast_dtype(c.precision, cuda)
        self.channels_last = cuda
        self._build_network()
        self._build_loss()
        # Several processes (torchrun): gradients are averaged across ranks by DDP, so each
        # rank's mean loss over its share of the global batch gives the one-process gradient.
        self.dist = distributed.info()
        self._check_batch_split()
        self.model = self._training_model()
        if checkpoint is not None:
            self._restore(checkpoint)
        self.compiled = (c.compile if c.compile is not None
                         else cuda and c.steps - self.step_count >= AUTO_COMPILE_STEPS)
        # static shapes: every batch of a run has the same size, and a shape change should
        # recompile for it rather than fall back to slower dynamic-shape kernels
        self.forward = torch.compile(self.model, dynamic=False) if self.compiled else self.model
        self._first_step = True
        self.out_dir = Path(c.output)
        self.checkpoint_path = self.out_dir / f"{c.name}.ckpt"
        self.last_good_step: Optional[int] = self.step_count if checkpoint is not None else None

    def _note(self, message: str) -> None:
        if self.notes is not None:
            self.notes(message)

    def _build_network(self) -> None:
        """The style network (seeded: the same run starts from the same weights), its Adam and
        the fp16 gradient scaler (a no-op at other precisions)."""
        from cvtools.style.network import TransformerNet

        c = self.config
        torch.manual_seed(c.seed)
        self.net = TransformerNet(c.width, c.residual_blocks).to(self.device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def _build_loss(self) -> None:
        """The frozen backbone, its style and content layers, and the perceptual loss against
        the painting."""
        from cvtools.backbones import load_backbone
        from cvtools.io.decode import load_image
        from cvtools.style.losses import LossWeights, build_perceptual_loss, check_objective
        from cvtools.style.stylize import resize_long_side

        c = self.config
        # thousands of steps at one batch shape: cuDNN autotuning pays back many times (tune)
        self.backbone = load_backbone(c.backbone, device=str(self.device), precision="fp32", fuse=True,
                                      channels_last=self.channels_last, weights=c.backbone_weights,
                                      tune=self.device.type == "cuda")
        layers = list(c.style_layers or self.backbone.defaults.style)
        content = c.content_layer or self.backbone.defaults.content
        self.backbone.check_layers(layers + [content])
        # (the config keeps None for "the backbone's default": that is what a resumed run compares)
        self.style_layers, self.content_layer = layers, content
        if c.style_layer_weights is not None and len(c.style_layer_weights) != len(layers):
            raise UsageError(f"{len(c.style_layer_weights)} style layer weights for {len(layers)} style layers")
        layer_w = dict(zip(layers, c.style_layer_weights)) if c.style_layer_weights else None
        try:
            c.objective = check_objective(c.objective) or None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        painting = load_image(c.style_image).rgb
        self.style_pixels = resize_long_side(painting, c.style_size).size
        self.loss_fn = build_perceptual_loss(self.backbone, painting, c.style_size, layers, content,
                                             LossWeights(c.content_weight, c.style_weight, c.tv_weight, layer_w),
                                             c.objective)

    def _check_batch_split(self) -> None:
        """The global batch must split evenly over the processes; a small share per GPU is
        allowed but noted (on the first process only)."""
        c, world = self.config, self.dist.world_size
        if world > 1 and c.batch_size % world:
            raise UsageError(f"batch_size={c.batch_size} must be divisible by the {world} processes",
                             param="batch_size")
        per_gpu = c.batch_size // world
        if self.dist.enabled and self.device.type == "cuda" and self.dist.is_main and per_gpu < 64:
            # measured on 2 H200s: 1.83x at 64 per GPU, 1.41x at 32 (small steps are bound by
            # the CPU launching kernels, and every GPU waits for the slowest)
            self._note(f"{per_gpu} images per GPU; several GPUs pay off best with 64 or more "
                       f"each (a batch size of {64 * world})")

    def _training_model(self) -> torch.nn.Module:
        """What the steps call: on GPUs the network's faster form (same function, same
        gradients, shared parameters: TransformerNet.for_training; self.net is what is saved),
        wrapped in DistributedDataParallel under torchrun."""
        cuda = self.device.type == "cuda"
        model = self.net.for_training() if cuda else self.net
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[self.device.index] if cuda else None)
        return model

    def _restore(self, checkpoint: Dict) -> None:
        """Network, optimizer, step, history and time so far from a checked checkpoint."""
        self.net.load_state_dict(checkpoint["model"])  # same tensors as DDP's, so no re-broadcast needed
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.step_count = checkpoint["step"]
        self.history = json.loads(checkpoint["history"])
        self.elapsed = checkpoint["elapsed"]
        self.changes = list(checkpoint.get("changes", []))

    # ------------------------------------------------------------------ one step
    def step(self, batch_uint8: torch.Tensor):
        """One optimisation step on a uint8 batch; returns the (detached, on-device) loss parts."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(c, self.step_count)
        x = batch_uint8.to(self.device, non_blocking=True).float().div_(255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        moved, inputs = None, x
        if c.temporal_weight:
            # the moved copies go through the network in the same batch (one launch per layer;
            # instance norm keeps the samples independent); only the originals get the
            # perceptual loss, whose backbone passes are the expensive part
            moved = stability_pair(x, self._stability_generator())
            inputs = torch.cat([x, moved.image])
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            y = self._forward_first(inputs) if self._first_step else self.forward(inputs)
            if moved is not None:
                y, y_moved = y.chunk(2)
            total, parts = self.loss_fn(y, x)
        if moved is not None:
            temporal = moved.distance(y_moved, y)
            total = total + c.temporal_weight * temporal
            parts["temporal"] = temporal.detach()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step_count += 1
        parts["total"] = total.detach()
        return parts

    def _stability_generator(self) -> torch.Generator:
        """The random moves of this step's stability term: a function of the run's seed, the
        rank and the step (a CPU generator: the same moves on every device, and a resumed run
        makes the moves the uninterrupted run would have made)."""
        key = (self.config.seed * 1_000_003 + self.step_count) * 7919 + self.dist.rank
        return torch.Generator().manual_seed(key % (2 ** 63))

    def _forward_first(self, x):
        """The first forward, where torch.compile does its work: if compiling fails (no
        compiler toolchain, an unsupported GPU), train eager instead of stopping, and say so."""
        self._first_step = False
        if not self.compiled:
            return self.forward(x)
        try:
            return self.forward(x)
        except Exception as exc:  # compilation errors come in many types; eager is always correct
            self._note(f"torch.compile failed ({first_line(exc, 160)}); training without it")
            self.compiled = False
            self.forward = self.model
            return self.forward(x)

    # ------------------------------------------------------------------ files
    def save_checkpoint(self) -> Path:
        obj = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step_count,
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_json(),
            "history": json.dumps(self.history),
            "elapsed": float(self.elapsed),
            "identity": dict(self.identity),
            "changes": list(self.changes),
        }
        obj["sha256"] = content_digest(obj)
        _atomic_torch_save(obj, self.checkpoint_path)
        self.last_good_step = self.step_count
        return self.checkpoint_path

    @torch.no_grad()
    def save_preview(self, image: torch.Tensor, path: Path) -> Path:
        from cvtools.io.atomic import save_image

        was_training = self.net.training
        self.net.eval()
        x = image.unsqueeze(0).to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            y = self.net(x)
        self.net.train(was_training)
        return save_image(path, y[0].float().cpu())


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
    # tensors: the declared network's shapes (computed on the meta device: nothing allocated)
    with torch.device("meta"):
        params = list(TransformerNet(config.width, config.residual_blocks).named_parameters())
    model = obj["model"]
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
    opt = obj["optimizer"]
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


def _check_config(config: TrainConfig) -> None:
    try:
        config.check()
    except ValueError as exc:
        raise UsageError(f"training settings: {exc}") from None


def _default_name(style_image: str) -> str:
    from cvtools.errors import safe_path
    from cvtools.style.records import check_name

    stem = Path(style_image).stem
    try:
        return check_name(stem)
    except ValueError:
        raise UsageError(f"{safe_path(style_image)}: its name cannot name a style; pass `name`", param="name") from None


class _StopFlag:
    """SIGINT/SIGTERM set a flag that the loop checks between steps (so the checkpoint it then
    writes is consistent); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.signal: Optional[int] = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def default_workers() -> int:
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, n - 1))


#: With ``preview_every=None`` a run writes about this many previews (at least one).
PREVIEWS_PER_RUN = 8


def default_preview_every(steps: int) -> int:
    """Preview interval giving about PREVIEWS_PER_RUN previews over ``steps`` (short runs too)."""
    return max(1, round(steps / PREVIEWS_PER_RUN))


#: ``progress(step, steps, losses)``: see :func:`train_style`.
Progress = Callable[[int, int, Optional[Dict[str, float]]], None]


def train_style(config: TrainConfig, resume=None, overwrite: bool = False, new_settings: bool = False,
                settings_given: Optional[set] = None, progress: Optional[Progress] = None,
                notes: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Train (or resume) a style and write NAME.safetensors + NAME.json into ``config.output``.

    Files of an earlier run there (NAME.json, .safetensors, .ckpt) are never replaced unless
    ``overwrite`` (or ``resume`` continues that very run): this is checked before any work.
    ``resume``: a checkpoint to continue. Its run's settings (:data:`RUN_SETTINGS`; the painting
    and the photos by content) must be the config's, or a UsageError says what differs;
    ``new_settings`` continues with the config's instead. ``settings_given``: the config fields
    the caller chose (the command line's explicit options); the other run settings, and the
    name, are taken from the checkpoint. None: every field was chosen.

    Reporting (None: silent; under torchrun only the first process reports): ``progress`` is
    called with the starting step, then after every step; ``losses`` is None except at log
    steps, where it holds the averaged loss parts (style, content, tv, total) and the
    images_per_second so far. ``notes``: one-line messages for the user (photos skipped,
    fallbacks).

    Raises TrainingStopped (with the checkpoint path) when interrupted or when the loss
    diverges; the last good checkpoint is kept either way.
    """
    from cvtools import distributed

    if distributed.launched_by_torchrun():
        distributed.init(config.device)
    checkpoint, saved = _settle_config(config, resume, settings_given)
    c = config
    out_dir = Path(c.output)
    preview_dir = out_dir / f"{c.name}_previews"
    files = photo_files(c.photos, exclude=[preview_dir])
    identity = run_identity(c, files)
    changes = _compare_runs(resume, checkpoint, saved, c, identity, new_settings) if checkpoint is not None else []
    _check_outputs(c, resume, overwrite)
    start = checkpoint["step"] if checkpoint is not None else 0
    if start >= c.steps:
        raise UsageError(f"the checkpoint is at step {start}; ask for more `steps` than that to continue",
                         param="steps")
    preview_every = default_preview_every(c.steps) if c.preview_every is None else c.preview_every

    if not distributed.info().is_main:
        progress = notes = None  # every process would say the same
    workers = default_workers() if c.workers is None else c.workers
    dataset = _decoded_photos(c, files, workers, notes)
    preview = _preview_image(c, files, dataset) if preview_every else None
    _make_folder(out_dir)

    trainer = Trainer(c, checkpoint, notes=notes)
    trainer.identity = identity
    trainer.changes += changes
    loader = make_loader(dataset, start, c.steps, c.batch_size, workers, trainer.device.type == "cuda",
                         rank=trainer.dist.rank, world=trainer.dist.world_size)
    loop = _TrainingLoop(trainer, start, progress)
    loop.run(loader, preview, preview_every, preview_dir)
    if not trainer.dist.is_main:  # rank 0 writes the files; the others wait for it, then leave
        distributed.finish()
        return TrainResult(trainer.out_dir / f"{c.name}.safetensors", trainer.out_dir / f"{c.name}.json",
                           trainer.checkpoint_path, trainer.step_count, {}, loop.images_per_second,
                           trainer.elapsed, loop.steady_images_per_second)
    ckpt = trainer.save_checkpoint()
    result = _write_style(trainer, loop, files, ckpt)
    distributed.finish()
    return result


def _settle_config(config: TrainConfig, resume, settings_given: Optional[set]):
    """(checkpoint or None, the checkpoint's config or None), after checking ``config`` and
    completing it: on resume, what the caller left out is the run's (the machine aside), and a
    missing name is the run's, else the painting's."""
    _check_config(config)
    checkpoint = saved = None
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        saved = TrainConfig.from_json(checkpoint["config"])
        if settings_given is not None:
            for key in TrainConfig.__dataclass_fields__:
                if key not in settings_given and key not in LOCAL_SETTINGS:
                    setattr(config, key, getattr(saved, key))
        if config.name is None:
            config.name = saved.name
    if config.name is None:
        config.name = _default_name(config.style_image)
    return checkpoint, saved


def _decoded_photos(config: TrainConfig, files: List[Path], workers: int,
                    notes: Optional[Callable[[str], None]]) -> PhotoCrops:
    """The training crops, every photo decoded once up front: a folder of undecodable files is
    one line, not a traceback from a DataLoader worker; the ones that fail are noted once each."""
    from cvtools.errors import safe_path

    dataset = PhotoCrops(files, config.image_size, config.seed, config.crop_scale,
                         cache_bytes=(2 << 30) // max(1, workers), notes=notes)
    dataset.preload(budget=2 << 30, threads=max(1, min(8, workers)))
    if len(dataset.failures) == len(files):
        first = dataset.failures[0][1]
        raise UsageError(f"{safe_path(config.photos)}: none of its {len(files)} photos can be decoded "
                         f"(first: {first})")
    if notes is not None:
        for _, exc in dataset.failures:
            notes(f"skipping {exc}")
    return dataset


def _preview_image(config: TrainConfig, files: List[Path], dataset: PhotoCrops) -> torch.Tensor:
    """The photo the previews show (--preview, else the first training photo that decodes),
    512 px on its long side."""
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.style.stylize import resize_long_side

    if config.preview:
        rgb = load_image(config.preview).rgb
    else:
        good = min(i for i in range(len(files)) if i not in dataset._bad)
        rgb = load_image(files[good]).rgb
    return pil_to_tensor(resize_long_side(rgb, 512))


def _make_folder(path: Path) -> None:
    from cvtools.errors import safe_path

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{safe_path(path)}: cannot create the output folder "
                         f"({exc.strerror or type(exc).__name__})") from None


class _TrainingLoop:
    """The steps of :func:`train_style`: losses averaged over each log interval (reported to
    ``progress``, kept in the history, checked for NaN/inf), checkpoints, previews, and a clean
    stop on Ctrl-C or SIGTERM. After :meth:`run`, the rates are the global batch's (every
    process's)."""

    def __init__(self, trainer: Trainer, start: int, progress: Optional[Progress]):
        c = trainer.config
        self.trainer, self.config, self.dist = trainer, c, trainer.dist
        self.progress = progress
        self.sums: Dict[str, torch.Tensor] = {}
        self.count = 0  # steps in self.sums
        self.images = 0  # images this process has trained on
        self.t0 = time.perf_counter()
        self.elapsed_before = trainer.elapsed
        # The steady rate is timed from the first log step after a short warm-up (the log steps
        # wait for the device anyway: they read the losses), so start-up never dilutes it.
        self.steady_from = start + max(c.log_every, min(50, (c.steps - start) // 4))
        self.steady_mark = None  # (time, images) at that log step
        self.images_per_second = 0.0
        self.steady_images_per_second = 0.0

    def run(self, loader, preview: Optional[torch.Tensor], preview_every: int, preview_dir: Path) -> None:
        trainer, c, dist = self.trainer, self.config, self.dist
        trainer.net.train()
        if self.progress is not None:
            self.progress(trainer.step_count, c.steps, None)
        with _StopFlag() as stop:
            for batch in loader:
                self._step(batch)
                s = trainer.step_count
                losses = self._log() if s % c.log_every == 0 or s == c.steps else None
                if self.progress is not None:
                    self.progress(s, c.steps, losses)
                if c.checkpoint_every and s % c.checkpoint_every == 0 and s < c.steps:
                    self._checkpoint()
                if preview is not None and s % preview_every == 0 and dist.is_main:
                    trainer.save_preview(preview, preview_dir / f"step_{s:06d}.jpg")
                # (several processes agree on stopping at log steps: one tiny all-reduce per log)
                if (not dist.enabled or s % c.log_every == 0) and _any_rank(stop.signal is not None, dist):
                    self._stop(stop.signal)
        self._log()
        self._measure()

    def _step(self, batch: torch.Tensor) -> None:
        parts = self.trainer.step(batch)
        for k, v in parts.items():  # summed on the device: reading them would wait for it
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1
        self.images += batch.shape[0]

    def _log(self) -> Optional[Dict[str, float]]:
        """The losses since the last log, averaged into the history (None when no step was
        taken since), with the images/s so far; a NaN or infinite loss stops training
        (TrainingStopped naming the last good checkpoint)."""
        trainer = self.trainer
        if not self.count:
            return None
        if self.dist.enabled:  # the logged losses are the global batch's, as on one process
            import torch.distributed as tdist

            keys = sorted(self.sums)
            stacked = torch.stack([self.sums[k].float() for k in keys])
            tdist.all_reduce(stacked)
            self.sums = dict(zip(keys, stacked / self.dist.world_size))
        avg = {k: float(v) / self.count for k, v in self.sums.items()}  # (waits for the device)
        if self.steady_mark is None and trainer.step_count >= self.steady_from:
            self.steady_mark = (time.perf_counter(), self.images)
        if not all(math.isfinite(v) for v in avg.values()):
            ckpt = trainer.checkpoint_path if trainer.last_good_step is not None else None
            where = f"; the last good checkpoint is {ckpt} (step {trainer.last_good_step})" if ckpt else ""
            raise TrainingStopped(f"the loss became NaN or infinite near step {trainer.step_count}{where}; "
                                  "try a lower `lr` or `style_weight`", ckpt, param=("lr", "style_weight"))
        avg["step"] = trainer.step_count
        trainer.history.append(avg)
        self.sums, self.count = {}, 0
        rate = self.images * self.dist.world_size / max(1e-9, time.perf_counter() - self.t0)
        return dict(avg, images_per_second=rate)

    def _checkpoint(self) -> Path:
        """A checkpoint of the state after the losses are checked (never one of a diverged
        network); the first process writes it."""
        self._log()
        self.trainer.elapsed = self.elapsed_before + time.perf_counter() - self.t0
        return self.trainer.save_checkpoint() if self.dist.is_main else self.trainer.checkpoint_path

    def _stop(self, signum: Optional[int]) -> None:
        path = self._checkpoint()
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        raise TrainingStopped(f"stopped by {name} at step {self.trainer.step_count}; checkpoint saved: {path} "
                              f"(continue with `resume` {path})", path, exit_code=130, param="resume")

    def _measure(self) -> None:
        end = time.perf_counter()
        seconds = end - self.t0
        self.trainer.elapsed = self.elapsed_before + seconds
        steady = self.images / max(1e-9, seconds)
        if self.steady_mark is not None and self.images > self.steady_mark[1]:
            steady = (self.images - self.steady_mark[1]) / max(1e-9, end - self.steady_mark[0])
        world = self.dist.world_size  # every process trained on its share of each global batch
        self.images_per_second = self.images * world / max(1e-9, seconds)
        self.steady_images_per_second = steady * world


def _write_style(trainer: Trainer, loop: _TrainingLoop, files: List[Path], checkpoint: Path) -> TrainResult:
    """NAME.safetensors (fp16) and its record NAME.json, with the recipe and how it trained."""
    from cvtools.style.records import save_style_weights

    c = trainer.config
    weights_path = trainer.out_dir / f"{c.name}.safetensors"
    sha = save_style_weights(trainer.net.cpu(), weights_path, name=c.name)
    tail = trainer.history[-5:]  # the last few log intervals: one interval is noisy
    final = {k: round(sum(h[k] for h in tail) / len(tail), 6) for k in ("style", "content", "tv", "temporal", "total")
             if all(k in h for h in tail)} if tail else {}
    record = _style_record(trainer, loop, files, weights_path, sha, final)
    record_path = record.save(trainer.out_dir / f"{c.name}.json")
    return TrainResult(weights_path, record_path, checkpoint, trainer.step_count, final,
                       loop.images_per_second, trainer.elapsed, loop.steady_images_per_second)


def _style_record(trainer: Trainer, loop: _TrainingLoop, files: List[Path], weights_path: Path, sha: str,
                  final: Dict[str, float]):
    from cvtools.style.records import StyleRecord

    c = trainer.config
    return StyleRecord(
        name=c.name, title=c.title, artist=c.artist, year=c.year,
        provenance=dict(c.provenance, style_image=Path(c.style_image).name) if c.provenance
        else {"style_image": Path(c.style_image).name},
        weights={"file": weights_path.name, "sha256": sha, "dtype": "float16", "bytes": weights_path.stat().st_size},
        network={"architecture": "johnson2016-instancenorm-upsample", "width": c.width,
                 "residual_blocks": c.residual_blocks},
        recipe={"backbone": c.backbone, "backbone_weights": c.backbone_weights or "pretrained",
                "style_layers": trainer.style_layers,
                "style_layer_weights": c.style_layer_weights, "content_layer": trainer.content_layer,
                "content_weight": c.content_weight, "style_weight": c.style_weight, "tv_weight": c.tv_weight,
                **({"temporal_weight": c.temporal_weight} if c.temporal_weight else {}),
                "steps": c.steps, "batch_size": c.batch_size, "image_size": c.image_size,
                "style_size": c.style_size, "style_pixels": list(trainer.style_pixels),
                "crop_scale": list(c.crop_scale), "lr": c.lr, "lr_schedule": "warm-up, cosine to 0.1",
                "seed": c.seed, "objective": c.objective, "photos": f"{len(files)} photos from {c.photos}",
                **({"resumed_with_new_settings": trainer.changes} if trainer.changes else {})},
        training={"date": time.strftime("%Y-%m-%d"), "device": _device_name(trainer.device),
                  "torch": torch.__version__, "precision": str(trainer.amp_dtype or torch.float32).replace("torch.", ""),
                  "seconds": round(trainer.elapsed, 1),
                  "images_per_second": round(loop.images_per_second, 1),
                  "steady_images_per_second": round(loop.steady_images_per_second, 1),
                  "processes": trainer.dist.world_size, "compiled": bool(trainer.compiled),
                  "final_losses": final},
    )


def _compare_runs(path, checkpoint: Dict, saved: TrainConfig, config: TrainConfig, identity: Dict,
                  new_settings: bool) -> List[Dict]:
    """The run settings in which ``config`` differs from the checkpoint's run, as change records
    ({"step", "setting", "was", "now"}); a UsageError listing them unless ``new_settings``. The
    network's shape can never change."""
    from cvtools.errors import safe_path

    where = safe_path(path)
    old_id = checkpoint.get("identity", {})
    diffs: List[tuple] = []  # (setting, was, now, how to say it)
    if old_id.get("style_image") != identity["style_image"]:
        diffs.append(("style_image", saved.style_image, config.style_image,
                      f"the painting ({safe_path(Path(config.style_image).name)} is not the image the run trained on)"))
    if old_id.get("photos") != identity["photos"]:
        was, now = old_id.get("photo_count"), identity["photo_count"]
        detail = f"{now} photos now, {was} in the run" if was != now else f"{now} photos, but not the same files"
        diffs.append(("photos", saved.photos, config.photos, f"the photos ({detail})"))
    for key in RUN_SETTINGS:
        if key in ("style_image", "photos"):
            continue
        was, now = getattr(saved, key), getattr(config, key)
        if key == "backbone_weights" and "backbone_weights" in old_id:
            if old_id["backbone_weights"] == identity.get("backbone_weights"):
                continue
        elif was == now or (key == "crop_scale" and tuple(was) == tuple(now)):
            continue
        if key in ARCHITECTURE:
            raise UsageError(f"{where}: the run's network is {key}={was} (asked: {now}); a resumed run "
                             "keeps its network's shape (leave the setting out, or start a new run)", param=key)
        diffs.append((key, was, now, f"{key}={_show(now)} (the run: {_show(was)})"))
    if diffs and not new_settings:
        listed = "; ".join(d[3] for d in diffs)
        raise UsageError(f"{where}: this is not the run the checkpoint holds: {listed}. Give the run's settings "
                         f"(settings left out are the run's), or continue with the new ones: "
                         f"`new_settings` {where}", param=[d[0] for d in diffs] + ["new_settings"])
    step = checkpoint["step"]
    return [{"step": step, "setting": key, "was": _plain(was), "now": _plain(now)} for key, was, now, _ in diffs]


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "default" if value is None else str(value)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _check_outputs(config: TrainConfig, resume, overwrite: bool) -> None:
    """Refuse, before any work, to replace an earlier run's files (NAME.ckpt, .json,
    .safetensors in -o) unless ``overwrite``, or unless ``resume`` continues that very run (its
    checkpoint is NAME.ckpt in -o)."""
    from cvtools.errors import safe_path

    out = Path(config.output)
    ckpt = out / f"{config.name}.ckpt"
    ours = [ckpt, out / f"{config.name}.json", out / f"{config.name}.safetensors"]
    existing = [p for p in ours if p.exists() or p.is_symlink()]
    if not existing or overwrite:
        return
    if resume is not None and ckpt.exists() and _same_file(ckpt, resume):
        return  # continuing the run these files belong to
    if ckpt in existing and resume is None:
        step = ""
        try:
            step = f" at step {load_checkpoint(ckpt)['step']}"
        except WeightsError:
            pass
        raise UsageError(f"{safe_path(ckpt)}: an earlier run's checkpoint{step} is there; continue it with "
                         f"`resume` {safe_path(ckpt)}, or pass `overwrite` to start again (or use another `name` "
                         "or `output`)", param=("resume", "overwrite", "name", "output"))
    raise UsageError(f"{safe_path(existing[0])}: exists (from an earlier run); pass `overwrite` to replace it "
                     "(or use another `name` or `output`)", param=("overwrite", "name", "output"))


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _any_rank(flag: bool, dist) -> bool:
    """True on every rank when any rank has it (all ranks must stop at the same step, or DDP
    would wait forever for the ones that left)."""
    if not dist.enabled:
        return flag
    import torch.distributed as tdist

    t = torch.tensor([1 if flag else 0], device="cuda" if tdist.get_backend() == "nccl" else "cpu")
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item())


def _device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
