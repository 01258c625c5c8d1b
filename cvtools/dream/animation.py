"""Zooming dream animations: each frame is the previous one zoomed in and dreamed again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    import torch

ANIMATED_EXTENSIONS = (".gif", ".webp")
#: a --frames animation may also be a video (cvtools.video.io.WRITABLE_VIDEO: H.264 or VP9)
VIDEO_ANIMATION_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


def zoom(image, factor: float):
    """Zoom into the centre of ``image`` (N×C×H×W or C×H×W) by ``factor``, keeping its size.

    A sampling grid scaled by 1/factor, so non-integer zooms stay exact (no crop rounding that
    would make the animation wobble)."""
    import torch
    import torch.nn.functional as F

    x = image.unsqueeze(0) if image.dim() == 3 else image
    theta = torch.tensor([[1.0 / factor, 0.0, 0.0], [0.0, 1.0 / factor, 0.0]], device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0] if image.dim() == 3 else out


def dream_frames(engine, image, frames: int, zoom_factor: float = 1.05, seed: int = 0, alpha=None,
                 progress=None) -> Iterator[Tuple["torch.Tensor", Optional["torch.Tensor"]]]:
    """Yield ``frames`` (rgb, alpha) pairs: the dream of ``image``, then of each dream zoomed in.

    Frame k uses seed ``seed + k``: the animation is deterministic and each frame's jitter
    differs (a repeated jitter pattern shows as a shimmer)."""
    if frames < 1:
        raise ValueError("frames must be at least 1")
    current = image
    for k in range(frames):
        if k:
            current = zoom(current, zoom_factor)
            if alpha is not None:
                alpha = zoom(alpha, zoom_factor)
        current = engine(current, seed=seed + k, progress=progress)
        yield current, alpha


def save_animation(path, frames: Sequence, fps: float = 12.0, quality: int = 90, outputs=None) -> Path:
    """Write PIL frames as an animated GIF or WebP (atomically), looping forever; ``outputs``: the
    run's :class:`~cvtools.io.naming.Outputs` that named ``path`` (marker, overwrite decision)."""
    from PIL import Image

    from cvtools.errors import ImageError
    from cvtools.io.atomic import atomic_write
    from cvtools.io.markers import output_metadata

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in ANIMATED_EXTENSIONS:
        raise ImageError(path, f"animations are written as .gif or .webp, not {ext or 'no extension'}")
    duration = max(1, round(1000.0 / fps))
    if ext == ".gif":
        # One adaptive palette per frame (Floyd-Steinberg) keeps the dream's gradients smooth;
        # GIF transparency is one bit, so alpha is dropped.
        frames = [f.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
                  for f in frames]
        kwargs = dict(format="GIF", optimize=False, disposal=1)
    else:
        kwargs = dict(format="WEBP", quality=quality, method=4)
    kwargs.update(output_metadata(path, kwargs["format"], outputs))  # sRGB tag, provenance marker
    first, rest = frames[0], list(frames[1:])

    def write(tmp):
        if kwargs["format"] == "WEBP":  # lossy with the alpha kept (Pillow 13 can drop it: cvtools.io.webp)
            from cvtools.io.webp import save_animated_webp

            options = {k: v for k, v in kwargs.items() if k != "format"}
            save_animated_webp(tmp, [first, *rest], duration=duration, loop=0, **options)
        else:
            first.save(tmp, save_all=True, append_images=rest, duration=duration, loop=0, **kwargs)

    atomic_write(path, write, outputs=outputs)
    return path


def write_dream_animation(engine, image, frames: int, target: Union[str, Path, Sequence], *, zoom_factor: float = 1.05,
                          seed: int = 0, alpha=None, fps: float = 12.0, progress=None, outputs=None) -> List[Path]:
    """Dream a zooming animation of ``image`` (see :func:`dream_frames`) and write it.

    target: a .gif/.webp path (one animated file, written atomically once every frame is
    dreamed; WebP keeps ``alpha``, GIF drops it), or a sequence of ``frames`` image paths (each
    frame written, with its alpha, as soon as it is dreamed, so an interrupted run keeps its
    frames). ``outputs``: the run's :class:`~cvtools.io.naming.Outputs` that named ``target``.
    Returns the paths written."""
    from cvtools.io.atomic import save_image
    from cvtools.io.decode import tensor_to_pil

    animated = isinstance(target, (str, Path))
    if animated and Path(target).suffix.lower() in VIDEO_ANIMATION_EXTENSIONS:
        return [_write_video_animation(Path(target), dream_frames(engine, image, frames, zoom_factor, seed=seed,
                                                                  alpha=alpha, progress=progress), fps, outputs)]
    if not animated and len(target) != frames:
        raise ValueError(f"{len(target)} frame paths for {frames} frames")
    path = Path(target) if animated else None
    collected = []
    for k, (rgb, a) in enumerate(dream_frames(engine, image, frames, zoom_factor, seed=seed, alpha=alpha,
                                              progress=progress)):
        if animated:
            im = tensor_to_pil(rgb)
            if a is not None and path.suffix.lower() == ".webp":
                im.putalpha(tensor_to_pil(a))
            collected.append(im)
        else:
            save_image(target[k], rgb, alpha=a, outputs=outputs)
    if animated:
        return [save_animation(path, collected, fps=fps, outputs=outputs)]
    return [Path(t) for t in target]


def _write_video_animation(path: Path, frames, fps: float, outputs=None) -> Path:
    """Encode (rgb, alpha) frames into a video as each is dreamed (none held in memory), with the
    run's provenance marker; transparent areas are laid on white, as every video output is."""
    from cvtools.video.io import write_video
    from cvtools.video.process import marker_comment

    def opaque():
        for rgb, a in frames:
            yield rgb if a is None else rgb * a + (1.0 - a)

    return write_video(path, opaque(), fps=fps, overwrite=None, comment=marker_comment(path, outputs))
