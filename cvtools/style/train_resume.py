"""Resuming and re-running train-style safely: a resumed run takes the checkpoint's settings
for what the caller left out, must be the same run (painting and photos by content, the
recipe) unless asked, and an earlier run's files are never replaced unless asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional

from cvtools.errors import UsageError, WeightsError
from cvtools.style.train_checkpoint import load_checkpoint
from cvtools.style.train_config import (
    ARCHITECTURE,
    LOCAL_SETTINGS,
    RUN_SETTINGS,
    TrainConfig,
    check_config,
    default_name,
)


def settle_config(config: TrainConfig, resume, settings_given: Optional[set]):
    """(checkpoint or None, the checkpoint's config or None), after checking ``config`` and
    completing it: on resume, what the caller left out is the run's (the machine aside), and a
    missing name is the run's, else the painting's."""
    check_config(config)
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
        config.name = default_name(config.style_image)
    return checkpoint, saved


def compare_runs(path, checkpoint: Dict, saved: TrainConfig, config: TrainConfig, identity: Dict,
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


def check_outputs(config: TrainConfig, resume, overwrite: bool) -> None:
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
