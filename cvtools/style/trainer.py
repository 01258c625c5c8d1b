"""One train-style run's state and step: the style network, Adam, the frozen loss network and
the step counter (:class:`Trainer`). Several GPUs: ``Trainer.step`` is one optimisation step of
one process (DDP averages the gradients); checkpoints come from here."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from cvtools.device import autotuned_step
from cvtools.errors import UsageError, first_line
from cvtools.style.train_checkpoint import CHECKPOINT_FORMAT, atomic_torch_save, content_digest, load_checkpoint
from cvtools.style.train_config import AUTO_COMPILE_STEPS, TrainConfig, check_config, default_name
from cvtools.style.train_objective import learning_rate, stability_pair


def _config_for(config: TrainConfig, checkpoint: Optional[Dict]) -> TrainConfig:
    """``config`` checked, its name filled in, and its network's shape the checkpoint's."""
    check_config(config)
    if config.name is None:
        config.name = default_name(config.style_image)
    if checkpoint is not None:
        saved = TrainConfig.from_json(checkpoint["config"])
        if (saved.width, saved.residual_blocks) != (config.width, config.residual_blocks):
            raise UsageError(f"the checkpoint's network is width {saved.width:g} with {saved.residual_blocks} "
                             f"residual blocks, not {config.width:g} with {config.residual_blocks}")
    return config


#: a painting whose alpha averages below this (of 255) is (almost) fully transparent
MIN_MEAN_ALPHA = 2.55


def _checked_painting(image, path):
    """The painting's RGB, refused (ImageError naming it) when stylize would refuse it as too
    small (its style targets would be an upscaled blur) or when it is (almost) fully transparent
    (the style would be learnt from colours hidden under the transparency)."""
    from PIL import ImageStat

    from cvtools.errors import ImageError
    from cvtools.style.records import check_painting_size

    try:
        check_painting_size(*image.rgb.size)
    except ValueError as exc:
        raise ImageError(path, str(exc)) from None
    if image.alpha is not None and ImageStat.Stat(image.alpha).mean[0] < MIN_MEAN_ALPHA:
        raise ImageError(path, "the painting is (almost) fully transparent: there is no picture to learn a style from")
    return image.rgb


def autocast_dtype(precision: str, cuda: bool) -> Optional[torch.dtype]:
    """The autocast dtype for a TrainConfig.precision (None: plain fp32); auto is bf16 on GPUs."""
    if precision == "auto":
        return torch.bfloat16 if cuda else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class Trainer:
    """Owns the network, optimizer, loss and step counter of one training run."""

    def __init__(self, config: TrainConfig, resume=None, on_note: Optional[Callable[[str], None]] = None,
                 max_pixels: Optional[int] = -1):
        """``resume``: a checkpoint (a path, or what :func:`load_checkpoint` returned) whose
        network, optimizer and step to continue from; ``config`` is used as given (its width and
        residual blocks must be the checkpoint's). :func:`train_style` is what compares a
        resumed run's settings with the checkpoint's. ``on_note``: called with one-line messages
        for the user (a failed compilation, a small batch per GPU); None: silent. ``max_pixels``:
        the painting's decode limit (as :func:`~cvtools.io.decode.load_image`'s)."""
        from cvtools import distributed
        from cvtools.backbones import resolve_device

        self.on_note = on_note
        self.max_pixels = max_pixels
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
        self.amp_dtype = autocast_dtype(c.precision, cuda)
        self.channels_last = cuda
        self._build_network(resuming=checkpoint is not None)
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
        if self.compiled:
            from cvtools.compile_cache import activate

            activate(self.device)  # compiled once per machine: kept in cvtools' compile cache
        self.forward = torch.compile(self.model, dynamic=False) if self.compiled else self.model
        self._first_step = True
        self.out_dir = Path(c.output)
        self.checkpoint_path = self.out_dir / f"{c.name}.ckpt"
        self.last_good_step: Optional[int] = self.step_count if checkpoint is not None else None

    def _note(self, message: str) -> None:
        if self.on_note is not None:
            self.on_note(message)

    def _build_network(self, resuming: bool = False) -> None:
        """The style network (seeded: the same run starts from the same weights), its Adam and
        the fp16 gradient scaler (a no-op at other precisions)."""
        from cvtools.style.network import TransformerNet

        c = self.config
        torch.manual_seed(c.seed)
        self.net = TransformerNet(c.width, c.residual_blocks)
        if c.init_weights and not resuming:  # a resumed run's weights are the checkpoint's
            self._load_start(c.init_weights)
        self.net = self.net.to(self.device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def _load_start(self, path: str) -> None:
        """The weights to fine-tune (checked as any style weights file is, before a tensor is
        read); a file of another width or depth is a one-line error, not a partial start."""
        from cvtools.style.records import load_style_weights

        start = load_style_weights(path)
        c = self.config
        if (float(start.width), int(start.residual_blocks)) != (float(c.width), int(c.residual_blocks)):
            raise UsageError(f"{path}: its network has width {start.width:g} and {start.residual_blocks} residual "
                             f"blocks, this run {c.width:g} and {c.residual_blocks}", param="init_weights")
        self.net.load_state_dict(start.state_dict())
        self._note(f"starting from the weights in {path}")

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
                                      tune=self.device.type == "cuda", on_note=self._note)
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
        painting = _checked_painting(load_image(c.style_image, max_pixels=self.max_pixels), c.style_image)
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
    @autotuned_step
    def step(self, batch_uint8: torch.Tensor):
        """One optimisation step on a uint8 batch; returns the (detached, on-device) loss parts."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(c, self.step_count)
        x = batch_uint8.to(self.device, non_blocking=True).float().div_(255.0)
        faces = None
        if x.shape[1] == 4:  # the crops' fourth channel: face boxes (PhotoCrops' face_boxes)
            from cvtools.style.faces import darken_faces, face_weights

            x, boxes = x[:, :3], x[:, 3:]
            faces = face_weights(x, boxes)
            x = darken_faces(x, faces, float((c.objective or {}).get("darker_faces", 0.0)), self.step_count)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        moved, inputs = None, x
        if c.temporal_weight:
            # the moved copies go through the network in the same batch (one launch per layer;
            # instance norm keeps the samples independent); only the originals get the
            # perceptual loss, whose backbone passes are the expensive part
            moved = stability_pair(x, self._stability_generator(), local_fraction=c.temporal_local,
                                   deform=c.temporal_deform)
            inputs = torch.cat([x, moved.image])
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            y = self._forward_first(inputs) if self._first_step else self.forward(inputs)
            if moved is not None:
                y, y_moved = y.chunk(2)
            total, parts = self.loss_fn(y, x, faces) if faces is not None else self.loss_fn(y, x)
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
        atomic_torch_save(obj, self.checkpoint_path)
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
