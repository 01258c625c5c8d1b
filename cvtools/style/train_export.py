"""What a finished train-style run leaves: NAME.safetensors (fp16) and its style record
NAME.json (the recipe, the machine, the final losses)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List

import torch

from cvtools.style.train_config import TrainResult
from cvtools.style.train_loop import TrainingLoop
from cvtools.style.trainer import Trainer


def write_style(trainer: Trainer, loop: TrainingLoop, files: List[Path], checkpoint: Path) -> TrainResult:
    """NAME.safetensors (fp16) and its record NAME.json, with the recipe and how it trained."""
    from cvtools.style.records import save_style_weights
    from cvtools.style.train_checkpoint import saving

    c = trainer.config
    weights_path = trainer.out_dir / f"{c.name}.safetensors"
    with saving(weights_path, "style weights"):
        sha = save_style_weights(trainer.net.cpu(), weights_path, name=c.name)
    tail = trainer.history[-5:]  # the last few log intervals: one interval is noisy
    final = {k: round(sum(h[k] for h in tail) / len(tail), 6) for k in ("style", "stats", "tone", "tone_ratio", "chroma_tv", "face", "lattice", "spikes", "teacher", "content", "tv", "temporal", "total")
             if all(k in h for h in tail)} if tail else {}
    record = _style_record(trainer, loop, files, weights_path, sha, final)
    with saving(trainer.out_dir / f"{c.name}.json", "style record"):
        record_path = record.save(trainer.out_dir / f"{c.name}.json")
    return TrainResult(weights_path, record_path, checkpoint, trainer.step_count, final,
                       loop.images_per_second, trainer.elapsed, loop.steady_images_per_second, loop.start)


def _style_record(trainer: Trainer, loop: TrainingLoop, files: List[Path], weights_path: Path, sha: str,
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
                **({"temporal_local": c.temporal_local} if c.temporal_local else {}),
                **({"temporal_deform": c.temporal_deform} if c.temporal_deform else {}),
                **({"init_weights": Path(c.init_weights).name} if c.init_weights else {}),
                "steps": c.steps, "batch_size": c.batch_size, "image_size": c.image_size,
                "style_size": c.style_size, "style_pixels": list(trainer.style_pixels),
                "crop_scale": list(c.crop_scale), "lr": c.lr, "lr_schedule": "warm-up, cosine to 0.1",
                "seed": c.seed, "objective": c.objective, "photos": f"{len(files)} photos from {c.photos}",
                **_teacher_identity(trainer),
                **({"resumed_with_new_settings": trainer.changes} if trainer.changes else {})},
        training={"date": time.strftime("%Y-%m-%d"), "device": _device_name(trainer.device),
                  "torch": torch.__version__, "precision": str(trainer.amp_dtype or torch.float32).replace("torch.", ""),
                  "seconds": round(trainer.elapsed, 1),
                  "images_per_second": round(loop.images_per_second, 1),
                  "steady_images_per_second": round(loop.steady_images_per_second, 1),
                  "processes": trainer.dist.world_size, "compiled": bool(trainer.compiled),
                  "final_losses": final},
    )


def _teacher_identity(trainer: Trainer) -> dict:
    """Which network a distilled style copied (the objective's teacher_weight): its weights' SHA-256."""
    teacher = getattr(trainer.loss_fn, "teacher", None)
    if teacher is None:
        return {}
    return {"teacher": {"network": "any-painting", "sha256": teacher.sha256}}


def _device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
