"""Test clips made in code, with known motion: camera pans, a zoom and a moving object.

Each clip is rendered from the photos in ``samples/`` (public domain / CC0, see
``samples/SOURCES.md``), so it can ship and be regenerated anywhere. A frame is the scene
sampled through a known map from frame pixels to scene pixels, which gives the true optical
flow and the true occlusions exactly:

- ``pan``: the camera slides over the scene by a constant velocity (integer shifts are exact
  crops; sub-pixel shifts are bicubic resamples of the same scene);
- ``zoom``: the camera zooms in on the centre by a constant factor per frame (every point of a
  frame was visible in the one before: no occlusions);
- ``object``: a disc cut from another photo glides over a slowly panning background; the
  background it uncovers is occluded (not visible in the frame before).
- ``parallax``: footage-like depth: a background panning slowly, a middle layer (a disc of
  another photo) moving faster the same way, and a near object (a disc of a third photo)
  crossing the other way in front of both, each at sub-pixel speeds: three motions at once,
  objects hiding and uncovering each other.
- ``spinning_object``, ``deforming_object`` (not in :data:`KINDS`, QUALITY's table): a disc that
  turns, or whose picture ripples, as it glides: the checks that ``--stable`` blends layers that
  turn or deform instead of carrying them into drift.

Conventions (the same as :mod:`cvtools.video.flow`): ``flow[t]`` (2×H×W, x then y, in pixels)
says where pixel (x, y) of frame t was in frame t-1, so ``warp(frames[t-1], flow[t]) ≈ frames[t]``;
``flow[0]`` is zero. ``occluded[t]`` marks the pixels of frame t that frame t-1 did not show
(uncovered background, or content that came in over the border).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from cvtools import SAMPLES_DIR as SAMPLES  # the shipped sample photos (samples/ in a checkout links there)

#: The clips :func:`make_clip` knows, with their default motion.
KINDS = ("pan", "pan_subpixel", "zoom", "object", "parallax")


@dataclass
class SyntheticClip:
    """Frames with their true motion.

    frames: T×3×H×W float32 in [0, 1], on the 8-bit grid (``frames * 255`` are integers, so
    :meth:`frames_uint8` is lossless). flow: T×2×H×W float32 (see the module's conventions).
    occluded: T×H×W bool.
    """

    name: str
    frames: torch.Tensor
    flow: torch.Tensor
    occluded: torch.Tensor

    def __len__(self) -> int:
        return self.frames.shape[0]

    def frames_uint8(self) -> List[np.ndarray]:
        """The frames as H×W×3 uint8 arrays (what a video reader gives)."""
        u8 = (self.frames * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return [f.contiguous().numpy() for f in u8]


def _scene(image: Union[str, Path, torch.Tensor], width: int, height: int) -> torch.Tensor:
    """A sample photo (a name in ``samples/``, a path, or a 3×h×w tensor) as a 3×h×w float
    tensor scaled (LANCZOS) so that it covers ``width``×``height`` keeping its aspect ratio."""
    if torch.is_tensor(image):
        x = image.float()
        if x.dim() == 4:
            x = x[0]
        scale = max(width / x.shape[-1], height / x.shape[-2])
        if abs(scale - 1) > 1e-6:
            size = (max(height, round(x.shape[-2] * scale)), max(width, round(x.shape[-1] * scale)))
            x = F.interpolate(x[None], size=size, mode="bicubic", align_corners=False, antialias=True)[0]
        return x.clamp(0, 1)
    from PIL import Image

    path = Path(image)
    if not path.suffix:
        path = path.with_suffix(".jpg")
    if not path.is_file():
        path = SAMPLES / path.name
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max(width / im.width, height / im.height)
        size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
        im = im.resize(size, Image.LANCZOS)
        arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255


def _sample(scene: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Bicubic samples of ``scene`` (C×h×w) at scene pixel coordinates ``sx``, ``sy`` (H×W;
    pixel centres at integers). Integer coordinates give the scene's pixels exactly."""
    h, w = scene.shape[-2:]
    grid = torch.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], dim=-1)[None]
    out = F.grid_sample(scene[None], grid.float(), mode="bicubic", padding_mode="border", align_corners=True)
    return out[0].clamp(0, 1)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round() / 255


def _pixel_grid(height: int, width: int) -> Tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return xs, ys


def _outside(x: torch.Tensor, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Positions that fall outside the frame (the warp would have to invent them)."""
    return (x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)


def pan(image="coffee", frames: int = 32, size: Tuple[int, int] = (160, 256),
        velocity: Tuple[float, float] = (2.0, 1.0)) -> SyntheticClip:
    """The camera slides over ``image`` by ``velocity`` = (vx, vy) scene pixels per frame: the
    picture moves by −velocity, and the flow is +velocity everywhere."""
    height, width = size
    vx, vy = velocity
    span_x, span_y = abs(vx) * (frames - 1), abs(vy) * (frames - 1)
    scene = _scene(image, width + int(np.ceil(span_x)) + 1, height + int(np.ceil(span_y)) + 1)
    x0 = 0.0 if vx >= 0 else span_x
    y0 = 0.0 if vy >= 0 else span_y
    xs, ys = _pixel_grid(height, width)
    out, flows, occ = [], [], []
    for t in range(frames):
        out.append(_sample(scene, xs + x0 + vx * t, ys + y0 + vy * t))
        if t == 0:
            flows.append(torch.zeros(2, height, width))
            occ.append(torch.zeros(height, width, dtype=torch.bool))
        else:
            flows.append(torch.stack([torch.full((height, width), vx), torch.full((height, width), vy)]).float())
            occ.append(_outside(xs + vx, ys + vy, height, width))
    name = f"pan {vx:g},{vy:g} px/frame"
    return SyntheticClip(name, _quantize(torch.stack(out)), torch.stack(flows), torch.stack(occ))


def zoom(image="astronaut", frames: int = 32, size: Tuple[int, int] = (160, 256),
         factor: float = 1.012) -> SyntheticClip:
    """The camera zooms in on the centre by ``factor`` per frame (1.012^31 ≈ 1.45 over 32 frames).

    A frame pixel p shows the scene point c + (p − c)/s_t; in frame t-1 that point is at
    c + (p − c)/factor, so the flow is (p − c)(1/factor − 1): zero at the centre, growing outwards.
    """
    height, width = size
    scene = _scene(image, width, height)
    sh, sw = scene.shape[-2:]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    scx, scy = (sw - 1) / 2, (sh - 1) / 2
    xs, ys = _pixel_grid(height, width)
    out, flows, occ = [], [], []
    for t in range(frames):
        s = factor ** t
        out.append(_sample(scene, scx + (xs - cx) / s, scy + (ys - cy) / s))
        if t == 0:
            flows.append(torch.zeros(2, height, width))
        else:
            flows.append(torch.stack([(xs - cx) * (1 / factor - 1), (ys - cy) * (1 / factor - 1)]).float())
        occ.append(torch.zeros(height, width, dtype=torch.bool))
    name = f"zoom x{factor:g}/frame"
    return SyntheticClip(name, _quantize(torch.stack(out)), torch.stack(flows), torch.stack(occ))


def _disc_occlusion(inside: torch.Tensor, px: torch.Tensor, py: torch.Tensor, prev_cover: torch.Tensor) -> torch.Tensor:
    """Where frame t's pixel cannot be warped from frame t−1 (``px``, ``py``: where it came from):
    background whose source point was under the disc in frame t−1 (nearest pixel; ``inside``: the
    disc's pixels in frame t, ``prev_cover``: its coverage in t−1), or outside the frame."""
    height, width = inside.shape
    ix = px.round().clamp(0, width - 1).long()
    iy = py.round().clamp(0, height - 1).long()
    return (~inside & (prev_cover[iy, ix] > 0.5)) | _outside(px, py, height, width)


def moving_object(background="coffee", sprite="chelsea", frames: int = 32, size: Tuple[int, int] = (160, 256),
                  velocity: Tuple[float, float] = (3.5, 0.75), background_velocity: Tuple[float, float] = (0.5, 0.0),
                  radius: float = 0.3) -> SyntheticClip:
    """A disc of ``sprite`` (radius: a fraction of the frame height) glides across a background
    that pans slowly. The disc's own picture moves with it. Its edge is drawn with 4×4
    coverage ramp (anti-aliased); the true flow takes the disc's motion where coverage is over half.
    """
    height, width = size
    vx, vy = velocity
    bvx, bvy = background_velocity
    r = radius * height
    bg = _scene(background, width + int(np.ceil(abs(bvx) * (frames - 1))) + 1,
                height + int(np.ceil(abs(bvy) * (frames - 1))) + 1)
    sp = _scene(sprite, int(2 * r) + 4, int(2 * r) + 4)
    spx, spy = (sp.shape[-1] - 1) / 2, (sp.shape[-2] - 1) / 2  # the disc's centre in the sprite image
    bx0 = 0.0 if bvx >= 0 else abs(bvx) * (frames - 1)
    by0 = 0.0 if bvy >= 0 else abs(bvy) * (frames - 1)
    # the disc crosses the frame: centre from left to right over the clip
    travel_x = vx * (frames - 1)
    c0x = (width - travel_x) / 2
    c0y = height / 2 - vy * (frames - 1) / 2
    xs, ys = _pixel_grid(height, width)

    def coverage(cx, cy):
        # the disc's area in each pixel, to within a few per cent: 1 px wide linear ramp of the distance
        d = ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt()
        return (r - d + 0.5).clamp(0, 1)

    out, flows, occ = [], [], []
    prev_cover = None
    for t in range(frames):
        cx, cy = c0x + vx * t, c0y + vy * t
        back = _sample(bg, xs + bx0 + bvx * t, ys + by0 + bvy * t)
        front = _sample(sp, xs - cx + spx, ys - cy + spy)
        a = coverage(cx, cy)
        out.append(a.float() * front + (1 - a.float()) * back)
        inside = a > 0.5
        if t == 0:
            flows.append(torch.zeros(2, height, width))
            occ.append(torch.zeros(height, width, dtype=torch.bool))
        else:
            # the scene moved by -v: a frame-t pixel came from p + bv (background), p - v (disc)
            fx = torch.where(inside, torch.full_like(xs, -vx), torch.full_like(xs, bvx))
            fy = torch.where(inside, torch.full_like(ys, -vy), torch.full_like(ys, bvy))
            flows.append(torch.stack([fx, fy]).float())
            occ.append(_disc_occlusion(inside, xs + fx, ys + fy, prev_cover))
        prev_cover = a
    name = f"object {vx:g},{vy:g} px/frame over pan {bvx:g}"
    return SyntheticClip(name, _quantize(torch.stack(out)), torch.stack(flows), torch.stack(occ))


def parallax(frames: int = 32, size: Tuple[int, int] = (160, 256),
             layers=(("astronaut", (0.45, 0.15), None), ("chelsea", (1.6, 0.35), 0.28),
                     ("coffee", (-2.3, -0.3), 0.22))) -> SyntheticClip:
    """Layers at three depths (back to front): ``(photo, velocity px/frame, radius)``; the first
    is the background (radius None: the whole frame, a pan), the others discs (radius: a fraction
    of the frame height) crossing the frame at their own velocity, the nearer in front and moving
    faster (parallax). Anti-aliased edges as in :func:`moving_object`; the true flow at a pixel
    is the motion of the front-most layer covering more than half of it, and a pixel is occluded
    where that layer did not own the pixel it came from in the frame before."""
    height, width = size
    xs, ys = _pixel_grid(height, width)
    (bg_name, (bvx, bvy), _), discs = layers[0], layers[1:]
    bg = _scene(bg_name, width + int(np.ceil(abs(bvx) * (frames - 1))) + 1,
                height + int(np.ceil(abs(bvy) * (frames - 1))) + 1)
    bx0 = 0.0 if bvx >= 0 else abs(bvx) * (frames - 1)
    by0 = 0.0 if bvy >= 0 else abs(bvy) * (frames - 1)
    sprites = []
    for i, (name, (vx, vy), radius) in enumerate(discs):
        r = radius * height
        sp = _scene(name, int(2 * r) + 4, int(2 * r) + 4)
        # the discs cross the frame in opposite halves of its height, centred on the clip's middle frame
        c0x = width / 2 - vx * (frames - 1) / 2
        c0y = height * (0.4 + 0.25 * i) - vy * (frames - 1) / 2
        sprites.append((sp, r, vx, vy, c0x, c0y))
    out, flows, occ = [], [], []
    prev_owner = None
    for t in range(frames):
        img = _sample(bg, xs + bx0 + bvx * t, ys + by0 + bvy * t)
        owner = torch.zeros(height, width, dtype=torch.long)
        fx, fy = torch.full_like(xs, bvx), torch.full_like(ys, bvy)
        for k, (sp, r, vx, vy, c0x, c0y) in enumerate(sprites, 1):
            cx, cy = c0x + vx * t, c0y + vy * t
            front = _sample(sp, xs - cx + (sp.shape[-1] - 1) / 2, ys - cy + (sp.shape[-2] - 1) / 2)
            a = (r - ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt() + 0.5).clamp(0, 1)
            img = a.float() * front + (1 - a.float()) * img
            inside = a > 0.5
            owner[inside] = k
            fx, fy = torch.where(inside, torch.full_like(xs, -vx), fx), torch.where(inside, torch.full_like(ys, -vy), fy)
        out.append(img)
        if t == 0:
            flows.append(torch.zeros(2, height, width))
            occ.append(torch.zeros(height, width, dtype=torch.bool))
        else:
            flows.append(torch.stack([fx, fy]).float())
            px, py = xs + fx, ys + fy
            ix = px.round().clamp(0, width - 1).long()
            iy = py.round().clamp(0, height - 1).long()
            occ.append((prev_owner[iy, ix] != owner) | _outside(px, py, height, width))
        prev_owner = owner
    return SyntheticClip("parallax: 3 layers", _quantize(torch.stack(out)), torch.stack(flows), torch.stack(occ))


def _gliding_disc(name: str, frames: int, size: Tuple[int, int], velocity: Tuple[float, float],
                  background_velocity: Tuple[float, float], radius: float, margin: int, to_sprite, to_previous
                  ) -> SyntheticClip:
    """A disc of chelsea gliding at ``velocity`` over coffee panning at ``background_velocity``,
    its picture moving on its own: frame pixel p at offset q = p − c_t from the disc's centre shows
    the sprite's point ``to_sprite(qx, qy, t)`` (offsets from the sprite's centre; the sprite is
    cut ``margin`` px wider than the disc), and the material point it shows was at offset
    ``to_previous(qx, qy, t)`` from the centre a frame earlier (the true flow, where coverage is
    over half; occlusions as in :func:`moving_object`)."""
    height, width = size
    vx, vy = velocity
    bvx, bvy = background_velocity
    r = radius * height
    bg = _scene("coffee", width + int(np.ceil(abs(bvx) * (frames - 1))) + 1,
                height + int(np.ceil(abs(bvy) * (frames - 1))) + 1)
    sp = _scene("chelsea", int(2 * r) + 2 * margin, int(2 * r) + 2 * margin)
    spx, spy = (sp.shape[-1] - 1) / 2, (sp.shape[-2] - 1) / 2
    c0x, c0y = (width - vx * (frames - 1)) / 2, height / 2 - vy * (frames - 1) / 2
    xs, ys = _pixel_grid(height, width)
    out, flows, occ = [], [], []
    prev_cover = None
    for t in range(frames):
        cx, cy = c0x + vx * t, c0y + vy * t
        qx, qy = xs - cx, ys - cy
        sx, sy = to_sprite(qx, qy, t)
        front = _sample(sp, sx + spx, sy + spy)
        back = _sample(bg, xs + bvx * t, ys + bvy * t)
        cover = (r - (qx * qx + qy * qy).sqrt() + 0.5).clamp(0, 1)
        out.append(cover.float() * front + (1 - cover.float()) * back)
        inside = cover > 0.5
        if t == 0:
            flows.append(torch.zeros(2, height, width))
            occ.append(torch.zeros(height, width, dtype=torch.bool))
        else:
            px, py = to_previous(qx, qy, t)  # offsets from the disc's centre a frame earlier, c_t − v
            fx = torch.where(inside, px + (cx - vx) - xs, torch.full_like(xs, bvx))
            fy = torch.where(inside, py + (cy - vy) - ys, torch.full_like(ys, bvy))
            flows.append(torch.stack([fx, fy]).float())
            occ.append(_disc_occlusion(inside, xs + fx, ys + fy, prev_cover))
        prev_cover = cover
    return SyntheticClip(name, _quantize(torch.stack(out)), torch.stack(flows), torch.stack(occ))


def spinning_object(frames: int = 32, size: Tuple[int, int] = (160, 256), velocity: Tuple[float, float] = (1.5, 0.4),
                    spin_deg: float = 3.0, background_velocity: Tuple[float, float] = (0.5, 0.0),
                    radius: float = 0.3) -> SyntheticClip:
    """A disc of chelsea that turns by ``spin_deg`` a frame about its centre while it glides at
    ``velocity`` over coffee panning at ``background_velocity``: motion of its own that is not a
    translation (a rim moving 2.5 px/frame at 3°). The true flow takes the disc's turn and glide
    where coverage is over half; occlusions as in :func:`moving_object`. Not one of :data:`KINDS`
    (QUALITY's table): `--stable`'s check that a turning layer is blended, not carried."""
    theta = math.radians(spin_deg)

    def to_sprite(qx, qy, t):  # the sprite turned by a: frame offset q shows sprite point R(−a)·q
        a = t * theta
        return math.cos(a) * qx + math.sin(a) * qy, -math.sin(a) * qx + math.cos(a) * qy

    def to_previous(qx, qy, t):  # the same material point a frame earlier: R(−theta)·q
        return math.cos(theta) * qx + math.sin(theta) * qy, -math.sin(theta) * qx + math.cos(theta) * qy

    name = f"spinning object {spin_deg:g} deg/frame, {velocity[0]:g},{velocity[1]:g} px/frame"
    return _gliding_disc(name, frames, size, velocity, background_velocity, radius, 4, to_sprite, to_previous)


def deforming_object(frames: int = 32, size: Tuple[int, int] = (160, 256), velocity: Tuple[float, float] = (1.5, 0.4),
                     amplitude: float = 2.0, wavelength: float = 38.0, speed: float = 0.25,
                     background_velocity: Tuple[float, float] = (0.5, 0.0), radius: float = 0.3) -> SyntheticClip:
    """A disc of chelsea whose picture ripples as it glides at ``velocity`` over coffee panning at
    ``background_velocity``: motion of its own that is neither a translation nor affine, as a face
    that talks or fur in the wind. Frame pixel p at offset q = p − c_t from the disc's centre shows
    the sprite's point q + D(q, t), D(q, t) = ``amplitude``·(sin(k·q_y + ω·t), sin(k·q_x + ω·t + 1)),
    k = 2π/``wavelength``, ω = ``speed`` rad a frame. Its per-frame departure from the glide is up to
    ~amplitude·ω px and turns by up to ~amplitude·ω·k px per px locally, but averages out over
    the disc (an affine fit of it sees almost no turn). The true flow inverts D by a fixed-point
    iteration (a contraction: amplitude·k < 1). Not one of :data:`KINDS`: `--stable`'s check that
    a layer that deforms is not carried into drift."""
    k = 2 * math.pi / wavelength
    if amplitude * k >= 1:
        raise ValueError(f"amplitude·2π/wavelength must be under 1 (got {amplitude * k:.2f}): the ripple would fold")

    def ripple(qx, qy, t):
        return amplitude * torch.sin(k * qy + speed * t), amplitude * torch.sin(k * qx + speed * t + 1.0)

    def to_sprite(qx, qy, t):  # the material point this pixel shows
        ux, uy = ripple(qx, qy, t)
        return qx + ux, qy + uy

    def to_previous(qx, qy, t):  # q' with q' + D(q', t−1) = q + D(q, t), by fixed-point iteration
        mx, my = to_sprite(qx, qy, t)
        px, py = qx, qy
        for _ in range(24):  # a contraction by amplitude·k per step
            dx, dy = ripple(px, py, t - 1)
            px, py = mx - dx, my - dy
        return px, py

    name = f"deforming object {amplitude:g} px ripple, {velocity[0]:g},{velocity[1]:g} px/frame"
    return _gliding_disc(name, frames, size, velocity, background_velocity, radius, int(np.ceil(amplitude)) + 4,
                         to_sprite, to_previous)


def make_clip(kind: str, frames: int = 32, size: Tuple[int, int] = (160, 256)) -> SyntheticClip:
    """One of :data:`KINDS` with its default motion: ``pan`` (2, 1 px/frame: integer),
    ``pan_subpixel`` (1.37, 0.61 px/frame), ``zoom`` (×1.012/frame), ``object``, ``parallax``."""
    if kind == "pan":
        return pan("coffee", frames, size, (2.0, 1.0))
    if kind == "pan_subpixel":
        return pan("chelsea", frames, size, (1.37, 0.61))
    if kind == "zoom":
        return zoom("astronaut", frames, size)
    if kind == "object":
        return moving_object("coffee", "chelsea", frames, size)
    if kind == "parallax":
        return parallax(frames, size)
    raise ValueError(f"unknown synthetic clip {kind!r} (one of {', '.join(KINDS)})")
