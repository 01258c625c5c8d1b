"""Train the arbitrary-style network (:mod:`cvtools.style.arbitrary`) on photos and paintings.

>>> from cvtools.style.train_arbitrary import ArbitraryTrainConfig, train_arbitrary
>>> result = train_arbitrary(ArbitraryTrainConfig(photos="photos/", paintings="paintings/", output="run"),
...                          deadline=time.monotonic() + 480)

Each step (Ghiasi et al. 2017's recipe on cvtools' own losses): a batch of random photo crops,
each paired with a random crop of a random training painting; the painting goes through the
frozen backbone once, which gives both its Gram targets and, through the trainable encoder MLP,
its embedding; the transformer paints the photo with that embedding; the losses are computed
through the same frozen backbone: content at ``content_layer``, each sample's Gram distance to
its own painting at ``style_layers`` (relative, as in :mod:`cvtools.style.losses`), total
variation. The default objective is the stronger one of the bundled styles: "swag" Grams
(a softmax over channels first, against the backbone's peaky activations) plus a channel
mean/std term; on an H200 it kept the photos' content far better than plain Grams for the same
steps (benchmarks/arbitrary/PLAN.md). A few samples (``photo_style_fraction``) take their own photo as the "painting",
which teaches the network that a photo's own embedding means "leave it as it is": that is what
``strength`` < 1 interpolates towards.

Reproducible and resumable: photo crops come from :class:`cvtools.style.train_data.PhotoCrops`
(a function of (seed, sample number)), painting crops and the photo-as-style choice from a
generator seeded by (seed, step), so a resumed run sees the very data the uninterrupted one
would have; the checkpoint holds network, Adam, step, history and the RNG state, with a SHA-256
of its contents. ``deadline`` stops cleanly (checkpoint, weights, record, contact sheet).

Output folder: ``arbitrary.ckpt`` (resumable), ``arbitrary.safetensors`` (fp16, the trainable
parts: encoder MLP, heads, transformer; the backbone trunk is the embedded one and is not
saved), ``arbitrary.json`` (architecture, recipe, held-out paintings, provenance, the weights'
SHA-256, losses and held-out measurements), ``losses.jsonl`` (one line per logged step) and
``sheet.jpg`` (held-out photos × held-out paintings).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cvtools.errors import CvtoolsError, UsageError, WeightsError, first_line
from cvtools.style.arbitrary import (
    ArbitraryConfig,
    ArbitraryStyleNet,
    ArbitraryStylizer,
    check_encoder_layers,
    parameter_shapes,
    save_weights,
)
from cvtools.style.arbitrary_loss import ArbitraryStyleDistance

CHECKPOINT_FORMAT = "cvtools-train-arbitrary-1"
RECORD_FORMAT = "cvtools-arbitrary-style-record-1"
MAX_CHECKPOINT_BYTES = 1 << 30
MAX_STEPS = 10_000_000
#: the seed and count of the paintings held out of training for evaluation (chosen from the
#: sorted file names, so every copy of the folder holds out the same ones, whatever their size)
HOLDOUT_SEED = 28
HOLDOUT_COUNT = 10
#: steps timed before an automatic step count is fixed (after compilation and warm-up)
PROBE_STEPS = 20
#: seconds kept free before the deadline for the final checkpoint, weights, evaluation, sheet
FINISH_SECONDS = 30.0

NAME = "arbitrary"


def load_overlapping(net, state) -> tuple:
    """Copy ``state`` into ``net``'s parameters and buffers of the same name: whole where the
    shapes match, else the leading block both shapes share (a 96-channel layer's weights into
    the first 96 channels of a 128-channel one). A weight whose inputs grew (dimension 1 of a
    linear or convolution weight) gets zeros from its new inputs, so the old outputs start
    exactly as they were (a wider embedding starts as the narrower network, Net2Net's idea) and
    the new inputs' weights still learn (their inputs are not zero). Tensors and rows that are not
    copied keep ``net``'s own initialisation: a network grown ``decoder_blocks`` gets the old
    heads' rows (the new norms' come last) and keeps the new blocks' zero rows for their second
    norms (ArbitraryStyleNet), so it starts as the old network. Returns (whole, in part,
    untouched) counts."""
    exact = part = 0
    own = net.state_dict()
    with torch.no_grad():
        for name, dst in own.items():
            src = state.get(name)
            if src is None or src.dim() != dst.dim():
                continue
            if src.shape == dst.shape:
                dst.copy_(src)
                exact += 1
            else:
                block = tuple(slice(0, min(a, b)) for a, b in zip(src.shape, dst.shape))
                dst[block].copy_(src[block])
                if dst.dim() >= 2 and dst.shape[1] > src.shape[1]:
                    dst[:, src.shape[1]:] = 0
                part += 1
    return exact, part, len(own) - exact - part


@dataclass
class ArbitraryTrainConfig:
    photos: str
    paintings: str
    output: str = "."
    #: painting file names (in ``paintings``) never trained on: the evaluation set
    holdout: List[str] = field(default_factory=list)
    #: 0: as many steps as fit before the deadline (fixed after PROBE_STEPS timed steps and
    #: kept in the checkpoint, so a resumed run has the same schedule)
    steps: int = 0
    batch_size: int = 16
    image_size: int = 256
    #: painting crops are this size, as the encoder sees whole paintings at inference
    painting_size: int = 256
    photo_scale: tuple = (0.3, 1.0)
    #: area fraction of a painting that one crop covers (small: close-ups of the strokes)
    painting_scale: tuple = (0.1, 1.0)
    lr: float = 1e-3
    warmup_steps: int = 200
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e-4
    #: channel mean/std term on the style layers (cvtools.style.losses' "stats"), 0: off
    stats_weight: float = 0.5
    #: "gram", or "swag": a softmax over each position's channels before the Gram matrix
    #: (temperature: each painting's activation spread in that layer), which keeps a few peaky
    #: activations of the backbone from deciding the texture (cvtools.style.losses.swag), or
    #: "swag+gram": the mean of both (ArbitraryStyleDistance)
    style_transform: str = "swag"
    style_layers: List[str] = field(default_factory=lambda: ["blocks.0", "blocks.2", "blocks.4", "blocks.7"])
    content_layer: str = "blocks.4"
    #: style terms through further frozen networks, averaged with the main one's (as the bundled
    #: styles' ``extra_backbones``): {"efficientnet_lite1": ["blocks.0", "blocks.3", ...]}. One
    #: network's blind spots otherwise decide the texture: trained through Lite0 alone, the
    #: network moved Lite0's distance and not an independent Lite2's (benchmarks/arbitrary/PLAN.md)
    extra_backbones: Dict[str, List[str]] = field(default_factory=dict)
    photo_style_fraction: float = 0.15
    #: fraction of the other samples trained at a strength below 1: their embedding is
    #: ``(1 - s)·embedding(photo) + s·embedding(painting)`` (what ``--strength s`` computes at
    #: inference) and their style term ``s·d(output, painting) + (1 - s)·d(output, photo)``, so a
    #: half-way embedding is taught to mean half the painting's texture, not a washed-out
    #: full-strength picture; 0: off (the embedding mix is then untrained interpolation)
    strength_fraction: float = 0.0
    #: the strengths those samples get, uniform in this range
    strength_range: tuple = (0.2, 0.8)
    #: what a strength sample's style term is: "mix", ``s·d(output, painting) + (1 - s)·d(output,
    #: photo)`` (the photo's own texture pulls its strokes smooth), or "weight", ``s·d(output,
    #: painting)`` alone: the style weight scaled by s, the content term whole (Babaeizadeh and
    #: Ghiasi 2018, adjustable style transfer), so half strength is a painting of the photo with
    #: less of the painting's say, not a picture pulled towards the photo's smooth texture
    strength_target: str = "mix"
    #: fraction of the painting crops (not the photo-as-style ones) made into new "paintings": turned
    #: by a random multiple of 90° (strokes in other directions) and their colours rotated in hue
    #: (±PAINTING_HUE radians) and scaled in saturation (PAINTING_SATURATION); the crop is the
    #: encoder's input and the style target alike. The one pass generalises from 176 paintings
    #: (benchmarks/arbitrary/PLAN.md, "2026-12-06e"): more kinds of painting is what it lacks. 0: off
    painting_augment: float = 0.0
    #: fraction of the painting crops (not the photo-as-style ones) repainted as a new kind of
    #: painting by :mod:`cvtools.style.synthetic_paintings` (dabs, strokes along a flow, flat prints;
    #: the kind and its parameters drawn at random): textures no training painting has. 0: off
    synthetic_paintings: float = 0.0
    #: the kinds drawn among (names of synthetic_paintings.KINDS, each equally likely); the default
    #: is the first runs' three, so their records mean what they meant
    synthetic_kinds: tuple = ("dots", "strokes", "flat_print")
    #: fraction of the painting crops (not the photo-as-style ones) made into collages: the crop
    #: cut into 2×2 quarters, each quarter from the same place in the crop of another sample of
    #: the batch (another painting, at its own stroke scale). A collage's Gram is near the mean of
    #: its sources' (a Gram is a spatial average), so the encoder is taught what a mixture of
    #: paintings' statistics asks for: the space between 176 paintings, where a painting it never
    #: saw lies, is trained rather than interpolated. 0: off
    collage_paintings: float = 0.0
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 10
    #: ArbitraryConfig fields that differ from its defaults
    architecture: Dict = field(default_factory=dict)
    #: start from these network weights (a weights file of the same architecture: fine-tuning
    #: with a fresh optimiser and schedule); None: random initialisation
    init_weights: Optional[str] = None
    #: with ``init_weights`` of another architecture (a wider transformer): copy every tensor of
    #: the same name, its overlapping leading block where the shapes differ (the new channels
    #: start random), instead of refusing the file
    init_partial: bool = False
    backbone_weights: Optional[str] = None  # None: the embedded ones; "random": tests
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast on CUDA, fp32 elsewhere
    workers: Optional[int] = None
    compile: Optional[bool] = None  # None: on CUDA

    def check(self) -> "ArbitraryTrainConfig":
        """Types and ranges of the fields that shape the run (ValueError naming the first bad one)."""
        def number(key, lo, hi, integer=False):
            v = getattr(self, key)
            kind = int if integer else (int, float)
            if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"{key} {v!r} must be a {'whole ' if integer else ''}number of {lo:g}-{hi:g}")

        for key in ("steps", "checkpoint_every"):
            number(key, 0, MAX_STEPS, integer=True)
        for key, lo, hi in (("batch_size", 1, 4096), ("image_size", 32, 4096), ("painting_size", 32, 4096),
                            ("warmup_steps", 0, MAX_STEPS), ("log_every", 1, MAX_STEPS), ("seed", 0, 2 ** 63 - 1)):
            number(key, lo, hi, integer=True)
        for key in ("content_weight", "style_weight", "tv_weight", "stats_weight"):
            number(key, 0, 1e9)
        number("lr", 1e-12, 10)
        number("photo_style_fraction", 0, 1)
        number("strength_fraction", 0, 1)
        number("painting_augment", 0, 1)
        number("synthetic_paintings", 0, 1)
        number("collage_paintings", 0, 1)
        from cvtools.style.synthetic_paintings import KINDS

        v = self.synthetic_kinds
        if (not isinstance(v, (list, tuple)) or not v or not all(isinstance(k, str) and k in KINDS for k in v)
                or len(set(v)) != len(v)):
            raise ValueError(f"synthetic_kinds must name different kinds of {', '.join(KINDS)}")
        self.synthetic_kinds = tuple(v)
        v = self.strength_range
        if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) or not 0 <= v[0] <= v[1] <= 1:
            raise ValueError("strength_range must be two strengths 0 <= a <= b <= 1")
        self.strength_range = tuple(float(x) for x in v)
        if self.strength_target not in ("mix", "weight"):
            raise ValueError(f"strength_target {self.strength_target!r} must be 'mix' or 'weight'")
        for key in ("photo_scale", "painting_scale"):
            v = getattr(self, key)
            if not isinstance(v, (list, tuple)) or len(v) != 2 or not 0 < v[0] <= v[1] <= 1:
                raise ValueError(f"{key} must be two fractions 0 < a <= b <= 1")
            setattr(self, key, tuple(float(x) for x in v))
        if not isinstance(self.init_partial, bool):
            raise ValueError(f"init_partial {self.init_partial!r} must be true or false")
        if self.style_transform not in ArbitraryStyleDistance.TRANSFORMS:
            raise ValueError(f"style_transform {self.style_transform!r} must be one of "
                             f"{', '.join(ArbitraryStyleDistance.TRANSFORMS)}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision {self.precision!r} must be auto, fp32, bf16 or fp16")
        layers = list(self.style_layers) + [self.content_layer]
        if not self.style_layers or not all(isinstance(v, str) and 0 < len(v) < 100 for v in layers):
            raise ValueError("style_layers and content_layer must be layer names")
        extra = self.extra_backbones
        if not isinstance(extra, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and v and all(isinstance(x, str) and 0 < len(x) < 100 for x in v)
                for k, v in extra.items()):
            raise ValueError("extra_backbones must map backbone names to lists of layer names")
        if not isinstance(self.holdout, list) or not all(isinstance(v, str) for v in self.holdout):
            raise ValueError("holdout must be a list of file names")
        ArbitraryConfig(**self.architecture).check()
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ArbitraryTrainConfig":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__}).check()


# ---------------------------------------------------------------------------- data


def painting_files(folder) -> List[Path]:
    """Every painting (.jpg/.jpeg/.png) directly in ``folder``, sorted by name."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) \
        if folder.is_dir() else []
    if not files:
        raise UsageError(f"{folder}: no paintings (.jpg/.png) to train on", param="paintings")
    return files


def seeded_holdout(names: Sequence[str], count: int = HOLDOUT_COUNT, seed: int = HOLDOUT_SEED) -> List[str]:
    """``count`` names picked by a fixed seed from the sorted names (the same on every machine;
    names, not sizes or contents, so the 512-px copies on the GPU machine hold out the same)."""
    names = sorted({Path(n).stem for n in names})
    picks = np.random.default_rng(seed).choice(len(names), size=min(count, len(names)), replace=False)
    return sorted(names[i] for i in picks)


def _decode_uint8(path, max_side: int) -> torch.Tensor:
    """A picture as a 3×H×W uint8 tensor, shrunk so its long side is at most ``max_side``."""
    from cvtools.io.decode import load_image
    from cvtools.ops import resize_long_side

    im = resize_long_side(load_image(path).rgb, max_side, enlarge=False)
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)


class PaintingBank:
    """The training paintings, decoded once and kept (uint8) on the training device; each step's
    random crops are cut and resized there (no decoding or resizing on the CPU per step)."""

    def __init__(self, files: Sequence[Path], device, max_side: int = 768):
        self.files = list(files)
        self.images = [_decode_uint8(f, max_side).to(device) for f in self.files]

    def crops(self, rng: np.random.Generator, count: int, size: int, scale) -> torch.Tensor:
        """``count`` random crops (area fraction in ``scale``, aspect 3:4-4:3, random flips),
        each ``size``², N×3×S×S float in [0, 1]."""
        out = []
        for _ in range(count):
            img = self.images[int(rng.integers(len(self.images)))]
            h, w = img.shape[-2:]
            area = h * w * rng.uniform(*scale)
            aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = min(w, max(1, round(math.sqrt(area * aspect)))), min(h, max(1, round(math.sqrt(area / aspect))))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = img[None, :, y0:y0 + ch, x0:x0 + cw].float().div_(255)
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=ch > size or cw > size)
            out.append(crop.flip(-1) if rng.random() < 0.5 else crop)
        return torch.cat(out).clamp_(0, 1)


#: painting_augment's hue rotation (radians, either way) and saturation scale (range)
PAINTING_HUE = math.pi / 2
PAINTING_SATURATION = (0.7, 1.4)
#: RGB -> YIQ (NTSC): luma and two chroma axes, so a hue rotation keeps each pixel's light
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def new_painting(crop: torch.Tensor, turns: int, hue: float, saturation: float) -> torch.Tensor:
    """A square painting crop (3×S×S in [0, 1]) turned by ``turns`` × 90° and its chroma rotated
    by ``hue`` radians and scaled by ``saturation`` (luma kept): a painting with the same kind of
    strokes, running another way, in another palette."""
    if crop.shape[-1] != crop.shape[-2]:
        raise ValueError(f"painting crops are square, not {tuple(crop.shape[-2:])}")
    x = torch.rot90(crop, turns % 4, dims=(-2, -1))
    m = _YIQ.to(x.device, torch.float32)
    cos, sin = math.cos(hue) * saturation, math.sin(hue) * saturation
    turn = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]], device=x.device)
    full = torch.linalg.inv(m) @ turn @ m  # RGB -> YIQ -> turned and scaled chroma -> RGB
    return torch.einsum("ij,jhw->ihw", full, x.float()).clamp_(0, 1).to(crop.dtype)


# ---------------------------------------------------------------------------- trainer


def collaged(styles: torch.Tensor, chosen: np.ndarray, sources: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """``styles`` (N×3×S×S painting crops) with each ``chosen`` crop made a collage: its four
    quarters (split at S // 2) taken from the same places in the crops of other samples, drawn
    among ``sources`` (photo-as-style samples are not sources). The crops are read before any is
    changed, so a collage never holds another collage."""
    source_idx = np.flatnonzero(sources)
    if len(source_idx) < 2:
        return styles
    out, h = styles.clone(), styles.shape[-1] // 2
    quarters = ((slice(None, h), slice(None, h)), (slice(None, h), slice(h, None)),
                (slice(h, None), slice(None, h)), (slice(h, None), slice(h, None)))
    for i in np.flatnonzero(chosen).tolist():
        picks = rng.choice(source_idx[source_idx != i], size=4).tolist()
        for (rows, cols), j in zip(quarters, picks):
            out[i, :, rows, cols] = styles[j, :, rows, cols]
    return out


def learning_rate(config: ArbitraryTrainConfig, step: int) -> float:
    """Linear warm-up, then (once the step count is known) cosine decay to a tenth."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if not config.steps:
        return config.lr
    t = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _gram(f: torch.Tensor) -> torch.Tensor:
    from cvtools.style.losses import gram_matrix

    return gram_matrix(f)


class ArbitraryTrainer:
    """Network, optimizer, backbone, data and step counter of one run; :meth:`step` is one
    optimisation step on a uint8 batch of photo crops."""

    def __init__(self, config: ArbitraryTrainConfig, resume=None, on_note: Optional[Callable[[str], None]] = None):
        from cvtools.device import resolve_device

        checkpoint = load_checkpoint(resume) if isinstance(resume, (str, os.PathLike)) else resume
        if checkpoint is not None:
            saved = ArbitraryTrainConfig.from_json(checkpoint["config"])
            if ArbitraryConfig(**saved.architecture).check() != ArbitraryConfig(**config.architecture).check():
                raise UsageError("the checkpoint's architecture differs from this run's", param="resume")
        self.config = c = config.check()
        self.on_note = on_note or (lambda message: None)
        self.device = resolve_device(c.device)
        cuda = self.device.type == "cuda"
        self.amp_dtype = {"auto": torch.bfloat16 if cuda else None, "fp32": None, "bf16": torch.bfloat16,
                          "fp16": torch.float16}[c.precision]
        self.channels_last = cuda
        self.history: List[Dict] = []
        self.step_count = 0
        self.elapsed = 0.0
        self._build_backbone()
        self.style_distance = ArbitraryStyleDistance(c.style_transform, c.stats_weight)
        torch.manual_seed(c.seed)
        self.net = ArbitraryStyleNet(self.arch).to(self.device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        if checkpoint is not None:
            self._restore(checkpoint)
        elif c.init_weights:
            from cvtools.style.arbitrary import load_network

            start = load_network(c.init_weights)
            if start.config.check() == self.arch.check():
                self.net.load_state_dict(start.state_dict())
                self.on_note(f"starting from the weights in {c.init_weights}")
            elif c.init_partial:
                exact, part, fresh = load_overlapping(self.net, start.state_dict())
                self.on_note(f"starting from {c.init_weights} where the shapes allow: {exact} tensors whole, "
                             f"{part} in part, {fresh} new")
            else:
                raise UsageError(f"{c.init_weights}: its architecture differs from this run's "
                                 "(init_partial=true copies what fits)", param="init_weights")
        compile_ = c.compile if c.compile is not None else cuda
        self.transformer = torch.compile(self.net.transformer, dynamic=False) if compile_ else self.net.transformer
        self.compiled, self._compile_checked = compile_, False
        self.out_dir = Path(c.output)
        self.checkpoint_path = self.out_dir / f"{NAME}.ckpt"

    def _build_backbone(self) -> None:
        from cvtools.backbones import load_backbone

        c = self.config
        self.arch = ArbitraryConfig(**c.architecture).check()
        self.backbone = load_backbone(self.arch.backbone, device=str(self.device), precision="fp32", fuse=True,
                                      channels_last=self.channels_last, weights=c.backbone_weights,
                                      tune=self.device.type == "cuda")
        self.backbone.check_layers(list(c.style_layers) + [c.content_layer])
        check_encoder_layers(self.backbone, self.arch)
        self.extra = []  # (backbone, layers) of each further style network
        for name, layers in c.extra_backbones.items():
            bb = load_backbone(name, device=str(self.device), precision="fp32", fuse=True,
                               channels_last=self.channels_last, weights=c.backbone_weights,
                               tune=self.device.type == "cuda")
            bb.check_layers(list(layers))
            self.extra.append((bb, list(layers)))
        # one pass over each painting serves both the Gram targets and the encoder
        self.painting_layers = list(dict.fromkeys(list(c.style_layers) + list(self.arch.encoder_layers)))
        self.output_layers = list(dict.fromkeys(list(c.style_layers) + [c.content_layer]))

    def _restore(self, checkpoint: Dict) -> None:
        self.net.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.step_count = checkpoint["step"]
        self.history = json.loads(checkpoint["history"])
        self.elapsed = checkpoint["elapsed"]
        saved = ArbitraryTrainConfig.from_json(checkpoint["config"])
        if not self.config.steps:  # an automatic step count, once fixed, is the run's
            self.config.steps = saved.steps
        torch.set_rng_state(checkpoint["rng"])

    def step_generator(self) -> np.random.Generator:
        """This step's painting crops and photo-as-style choices: a function of (seed, step)."""
        return np.random.default_rng([self.config.seed, self.step_count, 0xA27])

    def step(self, batch_uint8: torch.Tensor, paintings: PaintingBank) -> Dict[str, torch.Tensor]:
        """One optimisation step; returns the (detached, on-device) loss parts."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(c, self.step_count)
        x = batch_uint8.to(self.device, non_blocking=True).float().div_(255.0)
        rng = self.step_generator()
        styles = paintings.crops(rng, x.shape[0], c.painting_size, c.painting_scale)
        own = rng.random(x.shape[0]) < c.photo_style_fraction
        # these samples' "painting" is their own photo (see the module docstring); indexed one
        # by one with Python integers: a mask tensor would be a host-to-device copy that waits
        # for the GPU on every step
        for i in np.flatnonzero(own).tolist():
            styles[i] = F.interpolate(x[i:i + 1], size=styles.shape[-2:], mode="bilinear", antialias=True,
                                      align_corners=False)[0].clamp(0, 1)
        strength = None
        if c.strength_fraction:
            # drawn after the crops and the photo-as-style choice, so runs without strength
            # samples see the same data as before the option existed
            mixed = (rng.random(x.shape[0]) < c.strength_fraction) & ~own
            values = np.where(mixed, rng.uniform(*c.strength_range, size=x.shape[0]), 1.0).astype(np.float32)
            strength = torch.from_numpy(values)
            if self.device.type == "cuda":  # pinned: the copy is queued, not waited for
                strength = strength.pin_memory()
            strength = strength.to(self.device, non_blocking=True)
        if c.painting_augment:  # drawn last: runs without it see the same data as before the option
            n = x.shape[0]
            chosen = (rng.random(n) < c.painting_augment) & ~own
            turns, hue = rng.integers(1, 4, size=n), rng.uniform(-PAINTING_HUE, PAINTING_HUE, size=n)
            saturation = np.exp(rng.uniform(*np.log(PAINTING_SATURATION), size=n))
            for i in np.flatnonzero(chosen).tolist():
                styles[i] = new_painting(styles[i], int(turns[i]), float(hue[i]), float(saturation[i]))
        if c.synthetic_paintings:  # drawn after everything else, for the same reason
            from cvtools.style.synthetic_paintings import synthesize

            n = x.shape[0]
            chosen = np.flatnonzero((rng.random(n) < c.synthetic_paintings) & ~own).tolist()
            if chosen:
                kinds = [c.synthetic_kinds[k] for k in rng.integers(0, len(c.synthetic_kinds), size=len(chosen))]
                styles[chosen] = synthesize(styles[chosen], kinds, rng)
        if c.collage_paintings:  # drawn after everything else, for the same reason
            styles = collaged(styles, (rng.random(x.shape[0]) < c.collage_paintings) & ~own, ~own, rng)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            styles = styles.contiguous(memory_format=torch.channels_last)
        # cuDNN autotuning around the whole step, backward passes included (the backbone was
        # loaded with tune on CUDA; the process's flag is put back after)
        with self.backbone.autotuning():
            total, parts = self._loss(x, styles, strength)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step_count += 1
        parts["total"] = total.detach()
        return parts

    def _loss(self, x: torch.Tensor, styles: torch.Tensor, strength: Optional[torch.Tensor] = None):
        """The weighted loss and its parts. ``strength`` (N, 1 for a plain sample): each sample's
        mix of the photo's and the painting's embedding and style targets (``strength_fraction``)."""
        from cvtools.style.losses import content_distance, total_variation

        c = self.config
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                  enabled=self.amp_dtype is not None)
        with torch.no_grad(), autocast:
            pf = self.backbone.features(styles, self.painting_layers)
            # the photo's own statistics and targets too when some samples mix in its style
            photo_layers = self.painting_layers + [c.content_layer] if strength is not None else [c.content_layer]
            xf = self.backbone.features(x, list(dict.fromkeys(photo_layers)))
        embedding = self.net.encoder(pf)  # the trainable MLP on the frozen statistics
        if strength is not None:
            photo_embedding = self.net.encoder(xf)
            embedding = photo_embedding + strength[:, None] * (embedding - photo_embedding)
        with autocast:
            y = self._transform(x, self.net.style_params(embedding))
            feats = self.backbone.features(y, self.output_layers)
        networks = [(self.backbone, list(c.style_layers), feats, pf, xf)]
        for bb, layers in self.extra:
            with torch.no_grad(), autocast:
                pe = bb.features(styles, layers)
                xe = bb.features(x, layers) if strength is not None and c.strength_target == "mix" else None
            with autocast:
                fe = bb.features(y, layers)
            networks.append((bb, layers, fe, pe, xe))
        style = 0.0
        for _, layers, f, p, ph in networks:
            d = self._layers_distance(f, p, layers)
            if strength is not None and c.strength_target == "weight":
                d = strength * d
            elif strength is not None:
                d = strength * d + (1 - strength) * self._layers_distance(f, ph, layers)
            style = style + d
        style = style.mean() / len(networks)
        content = content_distance(feats[c.content_layer], xf[c.content_layer]).mean()
        tv = total_variation(y.float())
        total = c.style_weight * style + c.content_weight * content + c.tv_weight * tv
        return total, {"style": style.detach(), "content": content.detach(), "tv": tv.detach()}

    def _layers_distance(self, feats, target_feats, layers) -> torch.Tensor:
        """Each sample's style distance through one network (N): :class:`ArbitraryStyleDistance`
        over its layers against the targets' own features (Gram temperatures included)."""
        return self.style_distance(feats, target_feats, layers)

    def _transform(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """The transformer, compiled when asked; if compiling fails at the first step (no
        compiler toolchain, an unsupported GPU), train eager instead of stopping, and say so."""
        if not self.compiled or self._compile_checked:
            return self.transformer(x, params)
        self._compile_checked = True
        try:
            return self.transformer(x, params)
        except Exception as exc:  # compilation errors come in many types; eager is always correct
            self.on_note(f"torch.compile failed ({first_line(exc, 160)}); training without it")
            self.compiled, self.transformer = False, self.net.transformer
            return self.transformer(x, params)

    # ------------------------------------------------------------------ files
    def save_checkpoint(self) -> Path:
        from cvtools.io.atomic import atomic_write
        from cvtools.style.train_checkpoint import content_digest

        obj = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step_count,
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_json(),
            "history": json.dumps(self.history),
            "elapsed": float(self.elapsed),
            "rng": torch.get_rng_state(),
        }
        obj["sha256"] = content_digest(obj)
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(obj, tmp))
        return self.checkpoint_path


def load_checkpoint(path) -> Dict:
    """A train-arbitrary checkpoint, checked (format, SHA-256 of the contents, config, shapes)
    before anything is built from it; any problem is one WeightsError line naming the file."""
    from cvtools.errors import safe_path
    from cvtools.style.train_checkpoint import content_digest
    from cvtools.weights import check_torch_zip, sniff_weights_format

    path, where = Path(path), safe_path(path)
    if not path.is_file():
        raise WeightsError(f"{where}: no such checkpoint", param="resume")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES or sniff_weights_format(path) != "zip":
        raise WeightsError(f"{where}: not a train-arbitrary checkpoint", param="resume")
    check_torch_zip(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read: one line, nothing executed
        raise WeightsError(f"{where}: not a readable checkpoint ({first_line(exc, 160)})", param="resume") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{where}: not a train-arbitrary checkpoint ({CHECKPOINT_FORMAT})", param="resume")
    stored = obj.pop("sha256", None)
    try:
        if stored != content_digest(obj):
            raise ValueError("its contents do not match its SHA-256 (damaged or altered)")
        config = ArbitraryTrainConfig.from_json(obj["config"])
        expected = parameter_shapes(ArbitraryConfig(**config.architecture).check())
        found = {k: tuple(v.shape) for k, v in obj["model"].items()}
        if found != expected:
            raise ValueError("its network does not match its architecture")
        step = obj["step"]
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
            raise ValueError(f"step {step!r} is out of range")
        if not all(bool(torch.isfinite(v).all()) for v in obj["model"].values()):
            raise ValueError("its network has NaN or infinite values")
        _check_optimizer(obj["optimizer"], list(expected.values()))
        json.loads(obj["history"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WeightsError(f"{where}: damaged checkpoint ({first_line(exc, 160)})", param="resume") from None
    return obj


# ---------------------------------------------------------------------------- the run


@dataclass
class ArbitraryResult:
    output: Path
    weights: Path
    record: Path
    checkpoint: Path
    steps: int
    #: why the loop ended: "steps" (all done) or "deadline"
    stopped_by: str
    images_per_second: float
    evaluation: Dict = field(default_factory=dict)


def train_arbitrary(config: ArbitraryTrainConfig, resume=None, deadline: Optional[float] = None,
                    on_note: Optional[Callable[[str], None]] = None, eval_photos: Sequence = (),
                    eval_paintings: Sequence = (), provenance: Optional[Dict] = None) -> ArbitraryResult:
    """Train (or continue ``resume``, a checkpoint path) until ``config.steps`` or ``deadline``
    (a ``time.monotonic()`` value; needed when ``steps`` is 0), then write the output folder.

    eval_photos / eval_paintings: held-out pictures for the measurements and the contact sheet
    (default paintings: the config's held-out ones); provenance: copied into the record.
    """
    from cvtools.style.train_config import default_workers
    from cvtools.style.train_data import PhotoCrops, make_loader, photo_files

    on_note = on_note or (lambda message: None)
    if not config.steps and deadline is None:
        raise UsageError("steps=0 (as many as fit) needs a deadline", param="steps")
    trainer = ArbitraryTrainer(config, resume, on_note)
    c = trainer.config
    Path(c.output).mkdir(parents=True, exist_ok=True)
    held = {Path(n).stem for n in c.holdout}
    all_paintings = painting_files(c.paintings)
    train_files = [p for p in all_paintings if p.stem not in held]
    bank = PaintingBank(train_files, trainer.device)
    on_note(f"{len(train_files)} training paintings ({len(all_paintings) - len(train_files)} held out), "
          f"device {trainer.device}, {'compiled' if trainer.compiled else 'eager'}")
    dataset = PhotoCrops(photo_files(c.photos), c.image_size, c.seed, c.photo_scale)
    dataset.preload()
    workers = default_workers() if c.workers is None else c.workers
    loader = make_loader(dataset, trainer.step_count, c.steps or MAX_STEPS, c.batch_size, workers,
                         trainer.device.type == "cuda")
    loop = _Loop(trainer, bank, deadline, on_note)
    stopped = loop.run(loader)
    on_note(f"training stopped by {stopped} at step {trainer.step_count}")
    if not eval_paintings:
        eval_paintings = [p for p in all_paintings if p.stem in held]
    return finish(trainer, stopped, loop.images_per_second(), eval_photos, eval_paintings, provenance or {}, on_note)


class _Loop:
    """The step loop: logging, checkpoints, the automatic step count, the deadline."""

    WARMUP = 5  # steps before timing starts (compilation, cuDNN autotuning, workers starting)

    def __init__(self, trainer: ArbitraryTrainer, bank: PaintingBank, deadline: Optional[float], on_note):
        self.trainer, self.bank, self.deadline, self.on_note = trainer, bank, deadline, on_note
        self.start = trainer.step_count
        self.timed_from: Optional[tuple] = None  # (time, step) once warmed up
        self.last: Optional[tuple] = None

    def sync(self):
        if self.trainer.device.type == "cuda":
            torch.cuda.synchronize()

    def run(self, loader) -> str:
        t, c = self.trainer, self.trainer.config
        t0 = time.monotonic()
        try:
            for batch in loader:
                if c.steps and t.step_count >= c.steps:
                    return "steps"
                if self.deadline is not None and time.monotonic() > self.deadline - FINISH_SECONDS:
                    return "deadline"
                parts = t.step(batch, self.bank)
                self._after_step(parts)
            return "steps"
        finally:
            self.sync()
            t.elapsed += time.monotonic() - t0
            if self.timed_from is not None:
                self.last = (time.monotonic(), t.step_count)

    def _after_step(self, parts: Dict[str, torch.Tensor]) -> None:
        t, c = self.trainer, self.trainer.config
        done = t.step_count - self.start
        if done == self.WARMUP:
            self.sync()
            self.timed_from = (time.monotonic(), t.step_count)
        if not c.steps and done == self.WARMUP + PROBE_STEPS:
            self.sync()
            per_step = (time.monotonic() - self.timed_from[0]) / PROBE_STEPS
            left = self.deadline - FINISH_SECONDS - time.monotonic()
            c.steps = t.step_count + max(1, int(0.97 * left / per_step))
            self.on_note(f"{per_step * 1000:.1f} ms per step ({c.batch_size / per_step:.0f} images/s): "
                       f"{c.steps} steps fit before the deadline")
        if t.step_count % c.log_every == 0:
            record = {"step": t.step_count, "lr": learning_rate(c, t.step_count - 1)}
            record.update({k: float(v) for k, v in parts.items()})
            if not math.isfinite(record["total"]):
                raise CvtoolsError(f"the loss became {record['total']} at step {t.step_count}; the last "
                                   f"checkpoint is {t.checkpoint_path} (try a lower `lr`)", param="lr")
            t.history.append(record)
            self.on_note(" ".join(f"{k} {v:.4g}" for k, v in record.items()))
        if c.checkpoint_every and t.step_count % c.checkpoint_every == 0:
            t.save_checkpoint()

    def images_per_second(self) -> float:
        if self.timed_from is None or self.last is None or self.last[1] <= self.timed_from[1]:
            return 0.0
        steps = self.last[1] - self.timed_from[1]
        return steps * self.trainer.config.batch_size / (self.last[0] - self.timed_from[0])


# ---------------------------------------------------------------------------- outputs

#: short side of the held-out photos and paintings in the measurements (the training size)
EVAL_SIZE = 256
SHEET_CELL = 256
SHEET_PAINTINGS = 8


def finish(trainer: ArbitraryTrainer, stopped: str, images_per_second: float, eval_photos: Sequence,
           eval_paintings: Sequence, provenance: Dict, on_note: Callable[[str], None] = lambda m: None) -> ArbitraryResult:
    """Checkpoint, losses, weights, measurements, contact sheet and record of a run."""
    from cvtools.io.atomic import atomic_write
    from cvtools.weights import sha256_file

    t0 = time.monotonic()
    out = Path(trainer.config.output)
    checkpoint = trainer.save_checkpoint()
    # the measurements below run many new image shapes once each: autotuning each would cost
    # far more than it saves
    torch.backends.cudnn.benchmark = False
    lines = "".join(json.dumps(h) + "\n" for h in trainer.history)
    atomic_write(out / "losses.jsonl", lambda tmp: Path(tmp).write_text(lines))
    weights = out / f"{NAME}.safetensors"
    save_weights(trainer.net, weights, {"record": f"{NAME}.json"})
    sha = sha256_file(weights)
    stylizer = ArbitraryStylizer(weights, device=str(trainer.device), sha256=sha, backbone=trainer.backbone)
    photos = [_decode_float(p) for p in eval_photos]
    paintings = [(Path(p).stem, _decode_float(p)) for p in eval_paintings]
    on_note(f"checkpoint and weights written ({time.monotonic() - t0:.1f} s)")
    evaluation = evaluate(stylizer, photos, paintings) if photos and paintings else {}
    on_note(f"held-out measurements done ({time.monotonic() - t0:.1f} s)")
    if photos and paintings:
        sheet = contact_sheet(stylizer, photos, paintings[:SHEET_PAINTINGS], SHEET_CELL)
        atomic_write(out / "sheet.jpg", lambda tmp: sheet.save(tmp, format="JPEG", quality=88))
        on_note(f"contact sheet written ({time.monotonic() - t0:.1f} s)")
    record = _record(trainer, stopped, images_per_second, sha, evaluation, provenance)
    record_path = out / f"{NAME}.json"
    atomic_write(record_path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"))
    return ArbitraryResult(out, weights, record_path, checkpoint, trainer.step_count, stopped, images_per_second,
                           evaluation)


def _decode_float(path) -> torch.Tensor:
    return _decode_uint8(path, 1024).float().div_(255)


@torch.no_grad()
def evaluate(stylizer: ArbitraryStylizer, photos: Sequence[torch.Tensor], paintings: Sequence) -> Dict:
    """Held-out measurements through the training backbone (Lite0; comparable between runs,
    not an independent judge): the Gram distance to each painting of the stylized photo against
    the photo's own ("style_reduction": 1 − stylized/photo, higher is better), the content
    distance, and how far strength 0 moves the photo (mean absolute difference, 0-1 scale)."""
    from cvtools.style.losses import content_distance

    bb, layers, content_layer = stylizer.backbone, ["blocks.0", "blocks.2", "blocks.4", "blocks.7"], "blocks.4"
    # centre squares at the training size: the measurement sees what training saw, and every
    # network call has one shape (on a GPU each new shape costs cuDNN ~0.2 s of planning:
    # measured 42 s for this evaluation at the pictures' own shapes on an H200)
    photos = [_square(p, EVAL_SIZE) for p in photos]

    def grams(img):
        feats = bb.features(img.unsqueeze(0).to(stylizer.device), layers + [content_layer])
        return {k: _gram(feats[k]) for k in layers}, feats[content_layer]

    def distance(g, ref):
        return float(sum(((g[k] - ref[k]).pow(2).sum() / ref[k].pow(2).sum()) for k in layers) / len(layers))

    per_painting, contents, identity = {}, [], []
    photo_feats = [grams(p) for p in photos]
    for name, painting in paintings:
        painting = _square(painting, EVAL_SIZE)
        ref, _ = grams(painting)
        emb = stylizer.encode(painting)
        cuts = []
        for photo, (g_photo, c_photo) in zip(photos, photo_feats):
            g_out, c_out = grams(stylizer.stylize(photo, emb))
            cuts.append(1 - distance(g_out, ref) / max(distance(g_photo, ref), 1e-12))
            contents.append(float(content_distance(c_out, c_photo).mean()))
        per_painting[name] = round(float(np.mean(cuts)), 4)
    for photo in photos:
        own = stylizer.encode(photo)
        identity.append(float((stylizer.stylize(photo, own, strength=0.0) - photo).abs().mean()))
    return {"size": EVAL_SIZE, "photos": len(photos), "paintings": len(paintings),
            "style_reduction_mean": round(float(np.mean(list(per_painting.values()))), 4),
            "style_reduction": per_painting, "content_distance_mean": round(float(np.mean(contents)), 4),
            "strength0_mean_abs_diff": round(float(np.mean(identity)), 4)}


def _square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre square crop resized to size² (3×S×S)."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = image[:, top:top + s, left:left + s].unsqueeze(0)
    return F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


@torch.no_grad()
def contact_sheet(stylizer: ArbitraryStylizer, photos: Sequence[torch.Tensor], paintings: Sequence,
                  cell: int = SHEET_CELL):
    """A PIL image: the paintings along the top, the photos down the left, each photo in each
    style; a last row gives the first photo at strength 0.5 (style-space interpolation)."""
    from PIL import Image

    from cvtools.io.decode import tensor_to_pil

    cols, rows = len(paintings) + 1, len(photos) + 2
    sheet = Image.new("RGB", (cols * cell, rows * cell), (255, 255, 255))
    tiles = [_square(p, cell) for p in photos]
    embeddings = [stylizer.encode(painting) for _, painting in paintings]
    for j, (_, painting) in enumerate(paintings):
        sheet.paste(tensor_to_pil(_square(painting, cell)), ((j + 1) * cell, 0))
    for i, tile in enumerate(tiles):
        sheet.paste(tensor_to_pil(tile), (0, (i + 1) * cell))
        for j, emb in enumerate(embeddings):
            sheet.paste(tensor_to_pil(stylizer.stylize(tile, emb)), ((j + 1) * cell, (i + 1) * cell))
    sheet.paste(tensor_to_pil(tiles[0]), (0, (rows - 1) * cell))
    for j, emb in enumerate(embeddings):
        sheet.paste(tensor_to_pil(stylizer.stylize(tiles[0], emb, strength=0.5)), ((j + 1) * cell, (rows - 1) * cell))
    return sheet


def _record(trainer: ArbitraryTrainer, stopped: str, images_per_second: float, sha: str, evaluation: Dict,
            provenance: Dict) -> Dict:
    c = trainer.config
    recipe = {k: v for k, v in asdict(c).items() if k not in ("photos", "paintings", "output", "device", "workers")}
    last = trainer.history[-1] if trainer.history else {}
    return {
        "format": RECORD_FORMAT,
        "weights": f"{NAME}.safetensors",
        "sha256": sha,
        "architecture": asdict(trainer.arch),
        "backbone": f"{trainer.arch.backbone} ({trainer.backbone.weights_desc}; the frozen trunk of the "
                    "style encoder and of the losses, not stored in the weights file)",
        "recipe": recipe,
        "held_out": {"paintings": sorted(c.holdout), "rule": f"{HOLDOUT_COUNT} picked by seed {HOLDOUT_SEED} "
                     "from the sorted names (seeded_holdout), plus the paintings of shared/styles/, which are "
                     "not in data/paintings"},
        "steps": trainer.step_count,
        "stopped_by": stopped,
        "train_seconds": round(trainer.elapsed, 1),
        "images_per_second": round(images_per_second, 1),
        "final_losses": {k: v for k, v in last.items() if k != "step"},
        "evaluation": evaluation,
        "provenance": dict({"paintings": "data/paintings/SOURCES.md (public-domain paintings)",
                            "photos": "data/photos/free (freely licensed photos; data/photos/SOURCES.md)"},
                           **provenance),
        "device": _device_name(trainer.device),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def _device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return str(device)


def _check_optimizer(state: Dict, shapes: List[tuple]) -> None:
    """Adam's saved state must be for a network of these parameter shapes (state dict order)."""
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or len(groups) != 1 or groups[0].get("params") != list(range(len(shapes))):
        raise ValueError("its optimizer state is for another network")
    for index, values in state.get("state", {}).items():
        if not isinstance(index, int) or not 0 <= index < len(shapes) or not isinstance(values, dict):
            raise ValueError("its optimizer state is for another network")
        for key, value in values.items():
            if not isinstance(value, torch.Tensor) or (value.dim() and tuple(value.shape) != shapes[index]):
                raise ValueError(f"its optimizer state {key!r} does not fit the network")
