"""New kinds of painting for training the any-painting network, drawn from painting crops.

The one-pass network generalises from the paintings it trained on (176 in shared/data/paintings),
and what it misses on new paintings is their kind of texture (benchmarks/arbitrary/PLAN.md,
"2026-12-06e": turned and recoloured crops gave it nothing new). These renderers repaint a
painting crop (its palette and composition kept) in three families of mark-making common in art,
with their parameters drawn at random, so the encoder sees textures no single painting has:

- :func:`dots`: separate round dabs of colour on a paper ground, each from the crop's colour
  there, jittered (pointillism, stippling), at a random dot size and spacing;
- :func:`strokes`: the crop smeared along a random smooth flow field by line-integral
  convolution, with a stroke texture along it (from straight hatching to swirls, from short
  dabs to long strokes);
- :func:`flat_print`: a few flat colours with dark outlines and paper grain (woodblock prints,
  posters);
- :func:`divisionism`: the crop as a mosaic of tiny dabs (1-3 px at the training crops' scale,
  where a pointillist painting's dots land), each the local colour pushed along a random hue, so
  neighbouring dabs mix optically (Seurat, Signac);
- :func:`hatching`: an ink drawing on paper, parallel lines whose width follows the crop's
  darkness and a second, crossing set in the shadows, optionally over a thin wash of its colours;
- :func:`watercolour`: soft washes of a few pigment levels, darker where a wash dries at its edge,
  blooms and paper granulation, lighter than the crop (transparent pigment on white paper);
- :func:`impasto`: :func:`strokes` with thick paint, lit from one side (the relief of a stroke
  texture's height field);
- :func:`mosaic`: tesserae of flat colour (a jittered grid's Voronoi cells, 4-12 px) set in
  grout, each a little bevelled;
- :func:`pastel`: directional pastel or charcoal marks on toned paper, the pigment caught on the
  paper's tooth, so the paper shows through where the pressure is light;
- :func:`glaze`: an old master's surface: soft modelling (sfumato), deep shadows, a warm varnish,
  craquelure and the canvas weave;
- :func:`contour_strokes`: long bands of a few colours that follow the crop's own contours
  (the iso-lines of its tone), as expressionists paint (Munch).

All take N×3×S×S in [0, 1] on any device and a numpy Generator (the trainer's per-step one, so
runs stay reproducible) and return the same shape in [0, 1]. The numpy Generator draws the
scalars (sizes, lengths, counts); arrays of random numbers are drawn on the crops' device by a
torch Generator seeded from it (:func:`_device_generator`), because a copy from host memory to a
GPU waits for everything queued before it. Torch only; no file is read.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from cvtools.style.losses import luminance

#: samples each way along a stroke (its length is 2 × samples × step px)
STROKE_SAMPLES = (4, 13)


def _device_generator(rng: np.random.Generator, device) -> torch.Generator:
    """A torch Generator on ``device`` seeded from ``rng`` (one draw)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(rng.integers(0, 2 ** 62)))
    return g


def _uniform(g: torch.Generator, low: float, high: float, shape) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, device=g.device)


def _smooth_noise(n: int, size: int, cells: int, g: torch.Generator) -> torch.Tensor:
    """N×1×size×size smooth noise in about [-1, 1]: a cells×cells random grid, bicubic-upsampled."""
    grid = torch.randn((n, 1, cells, cells), generator=g, device=g.device)
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False).clamp_(-2.5, 2.5) / 1.5


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0.3:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Each image of N×1×S×S to zero mean and unit deviation (a texture's shape, not its level)."""
    return (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-6)


def _gradient(x: torch.Tensor):
    """Central differences (d/dy, d/dx) of N×C×S×S, the edges replicated: the same shape."""
    gy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1), mode="replicate") / 2
    gx = F.pad(x[..., :, 2:] - x[..., :, :-2], (1, 1, 0, 0), mode="replicate") / 2
    return gy, gx


def _paper(crop: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """N×3×1×1 ground colours: the crop's lightest tones, warmed or cooled a little."""
    n = crop.shape[0]
    light = torch.quantile(crop.flatten(2), 0.9, dim=2)[..., None, None]
    tint = _uniform(g, -0.05, 0.05, (n, 3, 1, 1))
    mix = _uniform(g, 0.3, 0.9, (n, 1, 1, 1))
    return (mix * light + (1 - mix) * 0.92 + tint).clamp(0, 1)


def dots(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Round dabs on jittered grids over a paper ground (see the module): one layer, or a second
    one offset by half a cell over it (dense, overlapping dabs)."""
    n, _, s, _ = crop.shape
    g = _device_generator(rng, crop.device)
    out = torch.empty_like(crop)
    for i in range(n):
        radius = float(rng.uniform(1.2, 5.0))
        spacing = 2 * radius * float(rng.uniform(0.85, 1.5))
        spread = float(rng.uniform(0.02, 0.1))
        soft = _blur(crop[i:i + 1], radius)
        canvas = _paper(crop[i:i + 1], g)[0].expand(3, s, s).clone()
        for offset in ((0.0, 0.5) if rng.random() < 0.5 else (0.0,)):
            canvas = _dab_layer(canvas, soft, radius, spacing, spread, offset * spacing, g)
        out[i] = canvas
    return out.clamp_(0, 1)


def _dab_layer(canvas, soft, radius, spacing, spread, offset, g):
    """``canvas`` (3×S×S) with one grid of dabs painted over it, each the colour of ``soft``
    (1×3×S×S) at its centre plus N(0, spread) per channel."""
    s, dev = canvas.shape[-1], canvas.device
    cells = int(math.ceil((s + offset) / spacing)) + 1
    jitter = max(0.0, spacing / 2 - radius * 0.6)
    centres = (torch.arange(cells, device=dev, dtype=torch.float32) + 0.5) * spacing - offset
    cy = centres[:, None] + _uniform(g, -1, 1, (cells, cells)) * jitter
    cx = centres[None, :] + _uniform(g, -1, 1, (cells, cells)) * jitter
    grid = torch.stack([cx / s * 2 - 1, cy / s * 2 - 1], -1)[None]
    colour = F.grid_sample(soft, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    colour = (colour + spread * torch.randn(colour.shape, generator=g, device=dev)).clamp(0, 1)
    ys = torch.arange(s, device=dev, dtype=torch.float32) + 0.5
    cell = ((ys + offset) / spacing).long().clamp_(max=cells - 1)             # each pixel's grid cell
    cell_y, cell_x = cell[:, None].expand(s, s), cell[None, :].expand(s, s)
    dy = ys[:, None] - cy[cell_y, cell_x]
    dx = ys[None, :] - cx[cell_y, cell_x]
    inside = 0.5 - ((dy * dy + dx * dx).sqrt() - radius).clamp(-0.5, 0.5)      # 1 in, 0 out, a 1-px edge
    return canvas * (1 - inside) + colour[:, cell_y, cell_x] * inside


def _flow(n: int, s: int, rng: np.random.Generator, g: torch.Generator) -> torch.Tensor:
    """N×2×S×S unit vectors (x, y) of a random smooth field: a main direction turned by smooth
    noise, from almost straight (hatching) to strongly curling (swirls)."""
    base = _uniform(g, 0, math.pi, (n, 1, 1, 1))
    curl = _uniform(g, 0.1, 3.0, (n, 1, 1, 1))
    cells = int(rng.integers(2, 7))
    angle = base + curl * _smooth_noise(n, s, cells, g) * math.pi / 2
    return torch.cat([angle.cos(), angle.sin()], 1)


def _advect(image: torch.Tensor, flow: torch.Tensor, steps: torch.Tensor, step_px: torch.Tensor,
            max_steps: int) -> torch.Tensor:
    """Line-integral convolution: the mean of ``image`` (N×C×S×S) along each pixel's streamline
    of ``flow``, ``steps[i]`` (≤ ``max_steps``) samples each way ``step_px[i]`` apart for image i
    (N-vectors on its device; a triangle-weighted mean: strokes taper). Batched, and nothing read
    back to the host."""
    n, _, s, _ = image.shape
    ys, xs = torch.meshgrid(torch.arange(s, device=image.device, dtype=torch.float32),
                            torch.arange(s, device=image.device, dtype=torch.float32), indexing="ij")
    start = torch.stack([xs, ys], 0)[None].expand(n, -1, -1, -1)
    total = image.clone()
    weights = torch.ones(n, 1, 1, 1, device=image.device)
    length = steps.float().view(n, 1, 1, 1)
    stride = step_px.float().view(n, 1, 1, 1)
    for sign in (1.0, -1.0):
        pos = start.clone()
        for k in range(1, max_steps + 1):
            grid = (pos + 0.5) / s * 2 - 1
            v = F.grid_sample(flow, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                              align_corners=False)
            pos = pos + sign * stride * v
            grid = ((pos + 0.5) / s * 2 - 1).permute(0, 2, 3, 1)
            w = (1.0 - k / (length + 1)).clamp(min=0)  # 0 past each image's own length
            total = total + w * F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection",
                                              align_corners=False)
            weights = weights + w
    return total / weights


def _stroke_texture(crop: torch.Tensor, rng: np.random.Generator, g: torch.Generator,
                    widths=(0.6, 2.5), softness=(0.5, 3.0)):
    """The crop's colours and a zero-mean, unit-variance bristle texture (N×1×S×S), both smeared
    along one random flow."""
    n, _, s, _ = crop.shape
    flow = _flow(n, s, rng, g)
    length = torch.randint(STROKE_SAMPLES[0], STROKE_SAMPLES[1] + 1, (n,), generator=g, device=g.device)
    step = _uniform(g, 0.8, 1.6, (n,))
    widths, softness = rng.uniform(*widths, n), rng.uniform(*softness, n)  # bristle scale; colour blur
    noise = torch.rand((n, 1, s, s), generator=g, device=g.device)
    noise = torch.cat([_blur(noise[i:i + 1], float(widths[i])) for i in range(n)])
    soft = torch.cat([_blur(crop[i:i + 1], float(softness[i])) for i in range(n)])
    texture = _advect(noise, flow, length, step, STROKE_SAMPLES[1])
    texture = _standardise(texture)
    return _advect(soft, flow, length, step, STROKE_SAMPLES[1]), texture


def strokes(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The crop smeared along a random flow, with a brush texture along it (see the module)."""
    g = _device_generator(rng, crop.device)
    colour, texture = _stroke_texture(crop, rng, g)
    contrast = _uniform(g, 0.06, 0.2, (crop.shape[0], 1, 1, 1))
    return (colour * (1 + contrast * texture)).clamp_(0, 1)


def impasto(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Thick strokes lit from one side: the bristle texture is a height field, and each pixel is
    shaded by its slope towards a random light (see the module)."""
    n = crop.shape[0]
    g = _device_generator(rng, crop.device)
    colour, height = _stroke_texture(crop, rng, g, widths=(1.2, 3.5), softness=(0.3, 1.5))
    height = _blur(height, 0.8)
    gy, gx = _gradient(height)
    light = _uniform(g, 0, 2 * math.pi, (n, 1, 1, 1))
    relief = _uniform(g, 0.6, 2.0, (n, 1, 1, 1))       # how thick the paint is (slope gain)
    shade = relief * (gx * light.cos() + gy * light.sin())
    return (colour * (1 + shade.clamp(-0.6, 0.6)) + 0.15 * shade.clamp(min=0) ** 2).clamp_(0, 1)


def divisionism(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A mosaic of tiny dabs, each the local colour pushed along a random hue (see the module)."""
    n, _, s, _ = crop.shape
    g = _device_generator(rng, crop.device)
    cell = float(rng.uniform(1.0, 3.0))                 # the dabs' size in pixels
    cells = max(2, int(round(s / cell)))
    soft = _blur(crop, float(rng.uniform(0.8, 2.5)))
    grey = luminance(soft)
    soft = grey + _uniform(g, 1.0, 1.6, (n, 1, 1, 1)) * (soft - grey)  # pure pigments: more saturated
    # the jitter lies in the chroma plane (orthogonal to grey), so a dab changes hue, not tone
    u = torch.tensor([1.0, -1.0, 0.0], device=crop.device) / math.sqrt(2)
    v = torch.tensor([1.0, 1.0, -2.0], device=crop.device) / math.sqrt(6)
    angle = _uniform(g, 0, 2 * math.pi, (n, 1, cells, cells))
    chroma = _uniform(g, 0.08, 0.3, (n, 1, 1, 1)) * (0.5 + _uniform(g, 0, 1, (n, 1, cells, cells)))
    jitter = chroma * (angle.cos() * u.view(1, 3, 1, 1) + angle.sin() * v.view(1, 3, 1, 1))
    jitter = jitter + _uniform(g, 0.0, 0.08, (n, 1, 1, 1)) * torch.randn((n, 1, cells, cells), generator=g,
                                                                       device=g.device)
    dabs = F.interpolate(jitter, size=(s, s), mode="nearest")
    dabs = _blur(dabs, float(rng.uniform(0.0, 0.7)))    # from crisp squares to round, blended dabs
    return (soft + dabs).clamp_(0, 1)


def hatching(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Ink lines on paper whose width follows the crop's darkness; a crossing set in the shadows
    (see the module)."""
    n, _, s, _ = crop.shape
    dev = crop.device
    g = _device_generator(rng, dev)
    soft = _blur(crop, float(rng.uniform(0.7, 2.0)))
    dark = (1 - luminance(soft))
    dark = (dark - dark.amin((2, 3), keepdim=True)) / (dark.amax((2, 3), keepdim=True)
                                                      - dark.amin((2, 3), keepdim=True) + 1e-6)
    ys, xs = torch.meshgrid(torch.arange(s, device=dev, dtype=torch.float32),
                            torch.arange(s, device=dev, dtype=torch.float32), indexing="ij")
    period = _uniform(g, 3.0, 8.0, (n, 1, 1, 1))
    wobble = _uniform(g, 0.0, 2.5, (n, 1, 1, 1)) * _smooth_noise(n, s, int(rng.integers(3, 9)), g)
    tone = dark ** _uniform(g, 1.0, 2.0, (n, 1, 1, 1))  # highlights stay bare paper
    ink = torch.zeros((n, 1, s, s), device=dev)
    angle = _uniform(g, 0, math.pi, (n, 1, 1, 1))
    for layer in range(2):  # the second set crosses the first, only where the crop is dark
        across = (xs * angle.cos() + ys * angle.sin() + wobble) / period    # in periods
        centre = ((across % 1) - 0.5).abs() * 2                             # 0 on a line, 1 between
        # a line covers the fraction ``cover`` of its period (none on white, all on black), with
        # a one-pixel soft edge
        cover = ((tone - 0.5 * layer) * (1 + layer)).clamp(0, 1)
        ink = torch.maximum(ink, ((cover - centre) * period / 2 + 0.5).clamp(0, 1) * (cover > 0.02))
        angle = angle + _uniform(g, math.pi / 4, math.pi / 2, (n, 1, 1, 1))
    paper = _paper(crop, g)
    ink_colour = torch.quantile(soft.flatten(2), 0.03, dim=2)[..., None, None] * _uniform(g, 0.2, 0.8, (n, 1, 1, 1))
    wash = _uniform(g, 0.0, 0.6, (n, 1, 1, 1)) * (rng.random() < 0.5)  # a tinted drawing, or bare paper
    ground = paper * (1 - wash) + soft * wash
    return (ground * (1 - ink) + ink_colour * ink).clamp_(0, 1)


def watercolour(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Soft washes of a few pigment levels with dark drying edges, blooms and granulation, lighter
    than the crop (see the module)."""
    n, _, s, _ = crop.shape
    g = _device_generator(rng, crop.device)
    wash = _blur(crop, float(rng.uniform(1.5, 5.0)))
    levels = float(rng.uniform(3, 7))
    pigment = torch.round(wash * levels) / levels                # a few levels of each pigment
    regions = _blur(pigment, float(rng.uniform(0.6, 1.5)))
    # blooms: the pigment pools unevenly over a few large blotches
    regions = regions * (1 + _uniform(g, 0.03, 0.15, (n, 1, 1, 1)) * _smooth_noise(n, s, int(rng.integers(4, 12)), g))
    # a wash dries darker at its edge: where the pigment level changes, widened a little
    edge = (pigment[..., 2:, 1:-1] - pigment[..., :-2, 1:-1]).abs() + (pigment[..., 1:-1, 2:] - pigment[..., 1:-1, :-2]).abs()
    edge = _blur(F.pad(edge.sum(1, keepdim=True), (1, 1, 1, 1), mode="replicate"), float(rng.uniform(0.5, 1.2)))
    regions = regions * (1 - (_uniform(g, 0.5, 2.5, (n, 1, 1, 1)) * edge).clamp(0, 0.35))
    paper = 1 - 0.3 * (1 - _paper(crop, g))                          # watercolour paper is near white
    alpha = _uniform(g, 0.5, 0.9, (n, 1, 1, 1))              # transparent pigment: the paper shows
    out = paper * (1 - alpha * (1 - regions))
    grain = _blur(torch.randn((n, 1, s, s), generator=g, device=g.device), float(rng.uniform(0.5, 1.2)))
    return (out * (1 + _uniform(g, 0.03, 0.1, (n, 1, 1, 1)) * grain)).clamp_(0, 1)


def _voronoi(n: int, s: int, size: float, jitter: float, g: torch.Generator):
    """Cells of a grid of ``size`` px whose centres are jittered by ±``jitter``·size: the centres
    (N×cells×cells, y and x, in pixels), each pixel's distance to its nearest and second-nearest
    centre (N×S×S) and the nearest one's cell indices; and ``cells``."""
    dev = g.device
    cells = int(math.ceil(s / size)) + 2                  # one spare cell round the edge
    grid = (torch.arange(cells, device=dev, dtype=torch.float32) - 0.5) * size
    cy = grid.view(1, -1, 1) + _uniform(g, -1, 1, (n, cells, cells)) * jitter * size
    cx = grid.view(1, 1, -1) + _uniform(g, -1, 1, (n, cells, cells)) * jitter * size
    ys = torch.arange(s, device=dev, dtype=torch.float32) + 0.5
    home = (ys / size + 1).long()                         # each pixel's own cell (index into cells)
    # the nearest and second-nearest centres among the 3×3 cells around each pixel's own
    best = torch.full((n, s, s), float("inf"), device=dev)
    second = best.clone()
    best_y = torch.zeros((n, s, s), dtype=torch.long, device=dev)
    best_x = best_y.clone()
    for dy in (-1, 0, 1):
        iy = (home + dy).clamp(0, cells - 1)[:, None].expand(s, s)
        for dx in (-1, 0, 1):
            ix = (home + dx).clamp(0, cells - 1)[None, :].expand(s, s)
            d = ((ys[:, None] - cy[:, iy, ix]) ** 2 + (ys[None, :] - cx[:, iy, ix]) ** 2).sqrt()
            closer = d < best
            second = torch.where(closer, best, torch.minimum(second, d))
            best = torch.where(closer, d, best)
            best_y = torch.where(closer, iy, best_y)
            best_x = torch.where(closer, ix, best_x)
    return cy, cx, best, second, best_y, best_x, cells


def mosaic(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Tesserae of flat colour in grout, each bevelled (see the module)."""
    n, _, s, _ = crop.shape
    dev = crop.device
    g = _device_generator(rng, dev)
    size = float(rng.uniform(5.0, 14.0))                 # a tessera's width in pixels
    cy, cx, best, second, best_y, best_x, cells = _voronoi(n, s, size, float(rng.uniform(0.1, 0.4)), g)
    centre = torch.stack([cx / s * 2 - 1, cy / s * 2 - 1], -1)                  # N×cells×cells×2
    soft = _blur(crop, size / 3)
    colour = F.grid_sample(soft, centre, mode="bilinear", padding_mode="border", align_corners=False)
    colour = (colour + _uniform(g, 0.0, 0.06, (n, 1, 1, 1)) * torch.randn(colour.shape, generator=g, device=dev))
    flat_index = (best_y * cells + best_x).view(n, 1, s * s).expand(n, 3, s * s)
    tiles = colour.flatten(2).gather(2, flat_index).view(n, 3, s, s)
    bevel = 1 - _uniform(g, 0.0, 0.25, (n, 1, 1, 1)) * (best / (0.7 * size)).clamp(0, 1)[:, None] ** 2
    grout_colour = _uniform(g, 0.15, 0.85, (n, 1, 1, 1)) * torch.ones((n, 3, 1, 1), device=dev)
    # grout where the two nearest centres are about equally far: a joint 0.6-2 px wide
    grout = ((_uniform(g, 0.3, 1.0, (n, 1, 1, 1)) - (second - best)[:, None] / 2) + 0.5).clamp(0, 1)
    return (tiles.clamp(0, 1) * bevel * (1 - grout) + grout_colour * grout).clamp_(0, 1)


def pastel(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Directional pastel or charcoal marks on toned paper, caught on its tooth (see the module)."""
    n, _, s, _ = crop.shape
    g = _device_generator(rng, crop.device)
    colour, marks = _stroke_texture(crop, rng, g, widths=(0.6, 1.5), softness=(0.5, 2.0))
    tooth = _blur(torch.rand((n, 1, s, s), generator=g, device=g.device), float(rng.uniform(0.5, 1.2)))
    tooth = _standardise(tooth)
    # toned paper: a mid tone (grey, buff, blue-grey) or the crop's own mean, darkened
    tone = _uniform(g, 0.35, 0.7, (n, 1, 1, 1)) * (1 + _uniform(g, -0.15, 0.15, (n, 3, 1, 1)))
    paper = torch.where(_uniform(g, 0, 1, (n, 1, 1, 1)) < 0.5, tone,
                        crop.mean((2, 3), keepdim=True) * _uniform(g, 0.6, 0.9, (n, 1, 1, 1)))
    if rng.random() < 0.3:  # charcoal and white chalk: the tones only
        grey = luminance(colour)
        colour = torch.where(grey < paper.mean(1, keepdim=True), grey * 0.3, 0.5 + grey * 0.5).expand(n, 3, s, s)
    # pressure: how far the colour is from the paper, varied along the marks; the pigment covers
    # the tooth's peaks first
    pressure = 0.3 + ((colour - paper).abs().mean(1, keepdim=True) * 4).clamp(0, 1) * 0.5 + 0.25 * marks
    cover = ((pressure - 0.5 + 0.12 * tooth) * 5).clamp(0, 1)
    return (paper * (1 - cover) + colour * cover).clamp_(0, 1)


def glaze(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Soft modelling, deep shadows, a warm varnish, craquelure and canvas weave (see the module)."""
    n, _, s, _ = crop.shape
    dev = crop.device
    g = _device_generator(rng, dev)
    soft = _blur(crop, float(rng.uniform(1.5, 5.0)))                      # sfumato
    soft = soft ** _uniform(g, 1.1, 1.8, (n, 1, 1, 1))                    # deep shadows
    varnish = torch.stack([torch.ones(n, device=dev), _uniform(g, 0.78, 0.95, (n,)),
                           _uniform(g, 0.45, 0.75, (n,))], 1).view(n, 3, 1, 1)
    amount = _uniform(g, 0.3, 1.0, (n, 1, 1, 1))
    out = soft * (1 - amount + amount * varnish)                          # a yellowed varnish
    _, _, best, second, _, _, _ = _voronoi(n, s, float(rng.uniform(6.0, 20.0)), 0.45, g)
    crack = (1.0 - (second - best)[:, None] * float(rng.uniform(1.0, 2.5))).clamp(0, 1)
    out = out * (1 - _uniform(g, 0.1, 0.35, (n, 1, 1, 1)) * crack)
    ys = torch.arange(s, device=dev, dtype=torch.float32)
    period = float(rng.uniform(2.0, 4.0))                                 # the canvas weave
    weave = torch.sin(ys[:, None] * 2 * math.pi / period) * torch.sin(ys[None, :] * 2 * math.pi / period)
    return (out * (1 + _uniform(g, 0.01, 0.05, (n, 1, 1, 1)) * weave)).clamp_(0, 1)


def contour_strokes(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Long bands of a few colours along the crop's own contours (see the module)."""
    n, _, s, _ = crop.shape
    g = _device_generator(rng, crop.device)
    tone = luminance(_blur(crop, float(rng.uniform(3.0, 8.0))))
    gy, gx = _gradient(tone)
    # along the iso-lines (the gradient turned by 90°); where the tone is flat, a random flow
    along = 2 * torch.cat([-gy, gx], 1)  # full differences: the flat-tone fallback is scaled to them
    strength = along.norm(dim=1, keepdim=True)
    fallback = _flow(n, s, rng, g)
    weight = (strength / (strength.mean((2, 3), keepdim=True) + 1e-6)).clamp(0, 1)
    flow = F.normalize(weight * along / (strength + 1e-6) + (1 - weight) * fallback, dim=1)
    levels = float(rng.uniform(3, 8))
    soft = _blur(crop, 1.5)
    grey = luminance(soft)
    colour = soft + torch.round(grey * levels) / levels - grey           # bands of tone, the crop's hues
    length = torch.full((n,), STROKE_SAMPLES[1], device=g.device)
    step = _uniform(g, 1.0, 2.0, (n,))
    banded = _advect(colour, flow, length, step, STROKE_SAMPLES[1])
    streaks = _advect(_blur(torch.rand((n, 1, s, s), generator=g, device=g.device), 1.0), flow, length, step,
                      STROKE_SAMPLES[1])
    streaks = _standardise(streaks)
    return (banded * (1 + _uniform(g, 0.05, 0.15, (n, 1, 1, 1)) * streaks)).clamp_(0, 1)


def flat_print(crop: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A few flat colours with dark outlines and paper grain (see the module)."""
    n, _, s, _ = crop.shape
    dev = crop.device
    g = _device_generator(rng, dev)
    out = torch.empty_like(crop)
    for i in range(n):
        soft = _blur(crop[i:i + 1], float(rng.uniform(1.0, 3.0)))
        k = int(rng.integers(3, 8))
        # the palette: k colours picked from the crop by farthest-point sampling (its own inks)
        pixels = soft.flatten(2)[0].T                                        # S²×3
        picks = pixels[torch.randint(0, pixels.shape[0], (4096,), generator=g, device=dev)]
        palette = [picks[0]]
        for _ in range(k - 1):  # indexed by a device tensor: no wait for the GPU
            d = torch.stack([(picks - p).square().sum(1) for p in palette]).min(0).values
            palette.append(picks[d.argmax()])
        palette = torch.stack(palette)                                      # k×3
        index = torch.cdist(pixels[None], palette[None])[0].argmin(1)        # S²
        flat = palette[index].T.reshape(1, 3, s, s)
        labels = index.reshape(1, 1, s, s).float()
        edge = ((labels[..., 1:, :] != labels[..., :-1, :]).float())
        edge = F.pad(edge, (0, 0, 0, 1)) + F.pad((labels[..., :, 1:] != labels[..., :, :-1]).float(), (0, 1, 0, 0))
        thick = int(rng.integers(0, 3))
        if thick:
            edge = F.max_pool2d(edge, 2 * thick + 1, stride=1, padding=thick)
        ink = float(rng.uniform(0.05, 0.3))
        outlined = flat * (1 - edge.clamp(0, 1) * float(rng.uniform(0.6, 1.0))) + ink * edge.clamp(0, 1) * 0.3
        grain = _blur(torch.randn((1, 1, s, s), generator=g, device=dev), 0.7)
        out[i] = (outlined * (1 + float(rng.uniform(0.01, 0.06)) * grain))[0]
    return out.clamp_(0, 1)


#: the renderers by name, in the order :func:`synthesize` runs them (it draws from the trainer's
#: random stream: a new kind goes at the end, so the earlier kinds' pictures stay the same)
RENDERERS = {"dots": dots, "strokes": strokes, "flat_print": flat_print, "divisionism": divisionism,
             "hatching": hatching, "watercolour": watercolour, "impasto": impasto, "mosaic": mosaic,
             "pastel": pastel, "glaze": glaze, "contour_strokes": contour_strokes}
#: the kinds' names (ArbitraryTrainConfig.synthetic_kinds chooses among them)
KINDS = tuple(RENDERERS)


def synthesize(crops: torch.Tensor, kinds, rng: np.random.Generator) -> torch.Tensor:
    """Each crop (N×3×S×S) repainted by the renderer named in ``kinds`` (N names of KINDS)."""
    out = crops.clone()
    for kind in KINDS:
        index = [i for i, k in enumerate(kinds) if k == kind]
        if index:
            out[index] = RENDERERS[kind](crops[index].float(), rng).to(crops.dtype)
    return out
