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

One job per module: :mod:`~cvtools.style.train_config` (the settings, checked),
:mod:`~cvtools.style.train_data` (photos, data order, crops), :mod:`~cvtools.style.train_objective`
(learning-rate schedule, stability term), :mod:`~cvtools.style.trainer` (network, optimizer, one
step), :mod:`~cvtools.style.train_loop` (the steps, logs, stopping),
:mod:`~cvtools.style.train_checkpoint` (writing and checking checkpoints),
:mod:`~cvtools.style.train_resume` (what a resumed run may change, earlier runs' files) and
:mod:`~cvtools.style.train_export` (the weights and the style record); this module runs them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Optional

from cvtools.errors import UsageError
from cvtools.style.train_config import TrainConfig, TrainingStopped, TrainResult, default_preview_every, default_workers
from cvtools.style.train_data import decoded_photos, make_loader, photo_files, preview_image, run_identity
from cvtools.style.train_export import write_style
from cvtools.style.train_loop import Progress, TrainingLoop
from cvtools.style.train_resume import check_outputs, compare_runs, settle_config
from cvtools.style.trainer import Trainer

#: the Python API of training (the CLI and cvtools.style import these from here)
__all__ = ["TrainConfig", "TrainResult", "TrainingStopped", "Progress", "train_style"]


def train_style(config: TrainConfig, resume=None, overwrite: bool = False, new_settings: bool = False,
                settings_given: Optional[set] = None, progress: Optional[Progress] = None,
                on_note: Optional[Callable[[str], None]] = None, max_pixels: Optional[int] = -1) -> TrainResult:
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
    images_per_second so far. ``on_note``: one-line messages for the user (photos skipped,
    fallbacks). ``max_pixels``: the decode limit of the painting and every photo (as
    :func:`~cvtools.io.decode.load_image`'s: -1 is ``CVTOOLS_MAX_PIXELS`` or 100 MP, None none).

    Raises TrainingStopped (with the checkpoint path) when interrupted or when the loss
    diverges; the last good checkpoint is kept either way.
    """
    from cvtools import distributed

    if distributed.launched_by_torchrun():
        distributed.init(config.device)
    checkpoint, saved = settle_config(config, resume, settings_given)
    c = config
    out_dir = Path(c.output)
    preview_dir = out_dir / f"{c.name}_previews"
    files = photo_files(c.photos, exclude=[preview_dir],
                        on_note=on_note if distributed.info().is_main else None)
    identity = run_identity(c, files)
    changes = compare_runs(resume, checkpoint, saved, c, identity, new_settings) if checkpoint is not None else []
    _settle_outputs(c, files, preview_dir, resume, overwrite)
    start = checkpoint["step"] if checkpoint is not None else 0
    if start >= c.steps:
        raise UsageError(f"the checkpoint is at step {start}; ask for more `steps` than that to continue",
                         param="steps")
    preview_every = default_preview_every(c.steps) if c.preview_every is None else c.preview_every

    if not distributed.info().is_main:
        progress = on_note = None  # every process would say the same
    workers = default_workers() if c.workers is None else c.workers
    dataset = decoded_photos(c, files, workers, on_note, max_pixels)
    out_dir.mkdir(parents=True, exist_ok=True)  # checked writable above, made now that the photos decode
    preview = preview_image(c, files, dataset) if preview_every else None

    trainer = Trainer(c, checkpoint, on_note=on_note, max_pixels=max_pixels)
    trainer.identity = identity
    trainer.changes += changes
    loader = make_loader(dataset, start, c.steps, c.batch_size, workers, trainer.device.type == "cuda",
                         rank=trainer.dist.rank, world=trainer.dist.world_size)
    loop = TrainingLoop(trainer, start, progress)
    loop.run(loader, preview, preview_every, preview_dir)
    # rank 0 writes the files; the others wait for it, then leave
    result = _write(trainer, loop, files, dataset) if trainer.dist.is_main else _unwritten(loop)
    distributed.finish()
    return result


def _write(trainer: Trainer, loop: TrainingLoop, files, dataset) -> TrainResult:
    """The style (weights, record), then the checkpoint: the small files first, so a disk that
    fills up keeps the style itself. The record counts the photos trained on (not skipped ones)."""
    used = [f for i, f in enumerate(files) if i not in dataset._bad]
    result = write_style(trainer, loop, used, trainer.checkpoint_path)
    trainer.save_checkpoint()
    return result


def _settle_outputs(c: TrainConfig, files, preview_dir: Path, resume, overwrite: bool) -> None:
    """Before any work: no earlier run's files replaced unless asked, no input replaced ever, the
    output folder writable (found at the first checkpoint, the work would be lost), and with
    ``overwrite`` a new run's previews not mixed with an earlier run's."""
    from cvtools import distributed

    check_outputs(c, resume, overwrite)
    _check_inputs_kept(c, files, preview_dir)
    _make_folder(Path(c.output))
    if overwrite and resume is None and distributed.info().is_main:
        _remove_old_previews(preview_dir)


def _unwritten(loop: TrainingLoop) -> TrainResult:
    """What a process other than the first returns: where the first one writes the files."""
    trainer, name = loop.trainer, loop.config.name
    return TrainResult(trainer.out_dir / f"{name}.safetensors", trainer.out_dir / f"{name}.json",
                       trainer.checkpoint_path, trainer.step_count, {}, loop.images_per_second,
                       trainer.elapsed, loop.steady_images_per_second, loop.start)


#: a preview's name: step_000123.jpg
PREVIEW_NAME = re.compile(r"step_\d{6}\.jpg")


def _check_inputs_kept(c: TrainConfig, files, preview_dir: Path) -> None:
    """Refuse an output that is the painting or a training photo, even with ``overwrite``:
    the run would replace what it trains on (a preview over the painting it was made from)."""
    from cvtools.errors import safe_path

    out = Path(c.output)
    outputs = [out / f"{c.name}{ext}" for ext in (".ckpt", ".json", ".safetensors")]
    for path in [Path(c.style_image), *files]:
        in_previews = path.parent.resolve() == preview_dir.resolve() and PREVIEW_NAME.fullmatch(path.name)
        if in_previews or any(path.resolve() == o.resolve() for o in outputs):
            raise UsageError(f"{safe_path(path)}: is an input of this run and would be replaced by its output; "
                             "copy it elsewhere or use another `name` or `output`", param=("name", "output"))


def _remove_old_previews(preview_dir: Path) -> None:
    """An earlier run's previews (only files named as previews), so a new run's are not mixed
    with them."""
    if not preview_dir.is_dir():
        return
    for path in preview_dir.iterdir():
        if PREVIEW_NAME.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _make_folder(path: Path) -> None:
    from cvtools.errors import safe_path

    made = [p for p in [path, *path.parents] if not p.exists()]  # the folders made here, deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{safe_path(path)}: cannot create the output folder "
                         f"({exc.strerror or type(exc).__name__})") from None
    # a folder that cannot be written would otherwise be found at the first checkpoint, its work lost
    probe = path / f".cvtools-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{safe_path(path)}: cannot write to the output folder "
                         f"({exc.strerror or type(exc).__name__})") from None
    finally:
        # checked before the photos are decoded: a run that stops there leaves no empty folder
        # (the files' own writes make the folders again: cvtools.io.atomic)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
