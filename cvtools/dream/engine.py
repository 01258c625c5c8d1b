"""The DeepDream engine: gradient ascent on a backbone's activations over an octave pyramid.

Per octave (smallest first) the image is the octave's downscaled original plus the detail the
smaller octaves dreamed, upscaled (detail re-injection). Each step rolls the image by a random
shift (jitter), takes the gradient of the objective with respect to the input only, rolls the
gradient back, and moves the image by ``step_size`` times the gradient divided by its mean
absolute value; pixels stay in [0, 1].

One step function serves every path: eager (the plain reference, any device), tiled (large
images), and CUDA-graph replay (``fast``, CUDA only). The step has fixed shapes within an octave,
no host syncs and no data-dependent Python branches; the random shifts for an image are drawn up
front from a local generator, so a dream is a pure function of (image, settings, seed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple, Union

from cvtools.device import autotuned_step
from cvtools.dream.graphs import CapturedOctave, GraphCache, graphs_supported
from cvtools.dream.jitter import draw_shifts, roll2d, roll_indices
from cvtools.dream.objective import DreamObjective, resolve_layer_targets
from cvtools.dream.tiling import DEFAULT_MARGIN, MIN_TILE, auto_tile, bytes_per_pixel, memory_budget, tiled_gradient
from cvtools.errors import CvtoolsError, UsageError, first_line
from cvtools.ops import GaussianBlur, resize
from cvtools.specs import parse_tile

#: Mean absolute change per step, in [0, 1] pixel units (Google's 1.5 on 0-255 images is 0.006).
#: Picked by eye on samples/ with EfficientNet-Lite0, 4 octaves x 10 steps: 0.008 leaves faint
#: patterns, 0.012 paints over the whole photo; 0.010 grows creatures and keeps the subject.
DEFAULT_STEP_SIZE = 0.010


@dataclass(frozen=True)
class DreamSettings:
    """How to dream. ``layers`` None means the backbone's defaults (``bb.defaults.dream``).

    tile: ``"auto"`` (tile only when the image would not fit in memory), an int (core tile side
    in pixels), or None/0 (never tile); margin: context around each tile. smooth: sigma (pixels)
    of the Gaussian blur applied to each gradient (0 turns it off); at 1 px it removes the
    stride-grid speckle of raw gradients and keeps the dream's detail (compared by eye at 0, 1, 2).
    guide_size: the guide's shorter side when its features are taken. fast: CUDA graphs per
    octave; None picks them on CUDA, False forces the plain eager path (the reference the fast
    path is checked against). compile: torch.compile the objective's forward and backward
    (fuses the bias adds, activations and layout copies that dominate the GPU time; costs a
    compilation per octave size, so it pays off for many same-size images or frames). A dream is chaotic in its pixels (a 1e-4 change of the input moves
    the second step by ~0.008), so compare paths after one step, or by statistics.
    """

    layers: Optional[Tuple[str, ...]] = None
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    step_size: float = DEFAULT_STEP_SIZE
    jitter: int = 32
    tile: Union[str, int, None] = "auto"
    margin: int = DEFAULT_MARGIN
    guide_size: int = 224
    smooth: float = 1.0
    fast: Optional[bool] = None
    compile: bool = False

    def validated(self) -> "DreamSettings":
        if self.octaves < 1:
            raise UsageError("octaves must be at least 1", param="octaves")
        if self.octave_scale <= 1.0:
            raise UsageError("octave_scale must be above 1 (each octave this much larger than the last)",
                             param="octave_scale")
        if self.steps < 0:
            raise UsageError("steps must be 0 or more", param="steps")
        if self.step_size <= 0:
            raise UsageError("step_size must be positive", param="step_size")
        if self.jitter < 0:
            raise UsageError("jitter must be 0 or more", param="jitter")
        tile = parse_tile(self.tile, MIN_TILE)
        layers = self.layers
        if isinstance(layers, str):
            layers = (layers,)
        return replace(self, tile=tile, layers=tuple(layers) if layers else None)


def octave_sizes(h: int, w: int, octaves: int, scale: float, min_side: int) -> List[Tuple[int, int]]:
    """Octave sizes, smallest first, ending at (h, w); fewer octaves when the smallest would be
    under ``min_side`` (the backbone's smallest input)."""
    sizes = []
    for k in range(octaves - 1, -1, -1):
        f = scale ** -k
        size = (max(1, round(h * f)), max(1, round(w * f)))
        if k and min(size) < min_side:
            continue
        sizes.append(size)
    return sizes


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class DreamEngine:
    """A configured dream: call it on images (3×H×W or 1×3×H×W, [0, 1]) to get dreams of the
    same shape. Keep one engine for a folder or an animation: it reuses guide features, memory
    plans and captured CUDA graphs across same-sized images (a shape is captured when it comes
    back: a one-off size runs eagerly, cheaper than a capture it would never replay). Output
    depends only on the image, the settings and the seed, never on what ran before (safe to
    shard across processes).

    on_note: called with one-line messages for the user (octaves adapted, tiling, fallbacks).
    """

    def __init__(self, backbone, settings: DreamSettings = DreamSettings(), guide=None,
                 on_note: Optional[Callable[[str], None]] = None):
        self.backbone = backbone
        self.settings = settings.validated()
        self.targets = resolve_layer_targets(backbone, self.settings.layers)
        self.objective = DreamObjective(backbone, self.targets, guide=guide, guide_size=self.settings.guide_size)
        self._on_note = on_note
        self._said = set()
        fast = self.settings.fast
        self.use_graphs = graphs_supported(backbone.device) if fast is None else (fast and graphs_supported(backbone.device))
        self._graphs = GraphCache()
        self.graph_backend = None  # None: CUDA graphs (graphs.EagerReplay checks the plumbing on a CPU)
        import torch

        pre = backbone.preprocessing
        mean = torch.tensor(pre.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(pre.std, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale = (1.0 / std).to(backbone.device)
        self._shift = (-mean / std).to(backbone.device)
        # Tiles start on multiples of the deepest target's stride: they see the stride grid where
        # the whole image has it (measured: gradient cosine to the untiled one 0.43 -> 0.999).
        strides = {info.name: info.stride for info in backbone.layers}
        self._align = max(strides[t.layer] for t in self.targets)
        self._blur = GaussianBlur(self.settings.smooth, backbone.device) if self.settings.smooth > 0 else None
        self._loss = self._loss_tapped
        if self.settings.compile:
            from cvtools.compile_cache import activate

            activate(backbone.device)  # compiled once per machine: kept in cvtools' compile cache
            # The whole forward runs under compilation (no early stop: dynamo does not follow the
            # exception that stops it); what the objective does not use is dead code to the
            # compiler. Static shapes: one compilation per octave size, reused for every image.
            self._loss = torch.compile(self._loss_full, dynamic=False)
            # and the update: unroll, blur, clean, normalise, add, clamp in a few fused kernels
            self._update = torch.compile(self._update_stencil, dynamic=False)

    # ------------------------------------------------------------------ helpers
    def note(self, message: str) -> None:
        if self._on_note and message not in self._said:
            self._said.add(message)
            self._on_note(message)

    def plan(self, h: int, w: int, given: Optional[Tuple[int, int]] = None
             ) -> Tuple[List[Tuple[int, int]], Optional[int]]:
        """(octave sizes smallest first, tile or None) for an h×w image; ``given``: the input's
        own (h, w) where it was scaled up to h×w, named in the notes (the user's size, not ours)."""
        s = self.settings
        shown = f"{w}x{h}" if given in (None, (h, w)) else f"{given[1]}x{given[0]} (scaled up to {w}x{h})"
        sizes = octave_sizes(h, w, s.octaves, s.octave_scale, self.backbone.min_size)
        if len(sizes) < s.octaves:
            self.note(f"{shown} is too small for {s.octaves} octaves at scale {s.octave_scale:g} "
                      f"(smallest side must stay >= {self.backbone.min_size} px); using {len(sizes)}")
        tile = s.tile
        if tile == "auto":
            bpp = bytes_per_pixel(self.backbone, self.objective.layers)
            tile = auto_tile(h, w, bpp, memory_budget(self.backbone.device), s.margin)
            if tile is not None:
                self.note(f"{shown}: computing gradients in {tile}-px tiles to bound memory")
        return sizes, tile

    def total_steps(self, h: int, w: int) -> int:
        h, w = self._working_size(h, w)
        return len(octave_sizes(h, w, self.settings.octaves, self.settings.octave_scale,
                                self.backbone.min_size)) * self.settings.steps

    def _working_size(self, h, w):
        m = self.backbone.min_size
        if min(h, w) >= m:
            return h, w
        f = m / min(h, w)
        return max(m, round(h * f)), max(m, round(w * f))

    def gradient(self, x):
        """d objective / d x for a [0, 1] image crop (gradients to the input only)."""
        import torch

        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            # Normalised here with device constants made once: Backbone.prepare builds its mean
            # and std from Python lists on every call, a host-to-device copy a graph cannot hold.
            # One kernel for (x - mean) / std, one for the cast and layout change.
            layout = torch.channels_last if self.backbone.channels_last else torch.contiguous_format
            inp = torch.addcmul(self._shift, x, self._scale).to(dtype=self.backbone.dtype, memory_format=layout)
            loss = self._loss(inp)
        (g,) = torch.autograd.grad(loss, x)
        return g

    def _loss_tapped(self, inp):
        return self.objective(self.backbone.features(inp, self.objective.layers, prepared=True))

    def _loss_full(self, inp):
        with self.backbone.tap(self.objective.layers, stop_early=False) as store:
            self.backbone.model(inp)
        return self.objective(dict(store))

    def step(self, image, rows, cols, rows_inv, cols_inv, tile=None, tile_offset=(0, 0)):
        """One ascent step on ``image`` (in place): roll, gradient, unroll, normalised update, clamp."""
        x = roll2d(image, rows, cols)
        if tile is None:
            g = self.gradient(x)
        else:
            g = tiled_gradient(x, self.gradient, tile, tile_offset, self.settings.margin, self._align)
        if self.settings.compile:
            image.copy_(self._update(image, g, rows_inv, cols_inv))
        else:
            self._update_in_place(image, g, rows_inv, cols_inv)

    def _unrolled_gradient(self, g, rows_inv, cols_inv, stencil: bool):
        import torch

        g = roll2d(g, rows_inv, cols_inv)
        if self._blur is not None:
            g = self._blur.stencil(g) if stencil else self._blur(g)
        # Half-precision backbones can overflow on extreme inputs; a non-finite gradient must not
        # poison the picture (done on the device: no sync).
        g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
        return g * (self.settings.step_size / (g.abs().mean() + 1e-12))

    def _update_in_place(self, image, g, rows_inv, cols_inv):
        """Unroll the gradient of the rolled image, blur, normalise by its mean absolute value,
        add, clamp."""
        image.add_(self._unrolled_gradient(g, rows_inv, cols_inv, stencil=False))
        image.clamp_(0.0, 1.0)

    def _update_stencil(self, image, g, rows_inv, cols_inv):
        """The same update as a pure function (what torch.compile fuses best)."""
        return (image + self._unrolled_gradient(g, rows_inv, cols_inv, stencil=True)).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ octaves
    def _octave(self, image, shifts, tile, tile_offsets, progress):
        """Run one octave's steps on ``image`` (1×3×h×w on the device); returns the result."""
        h, w = image.shape[-2:]
        rows, rows_inv = roll_indices(h, shifts[:, 0])
        cols, cols_inv = roll_indices(w, shifts[:, 1])
        steps = self.settings.steps
        if tile is not None and max(h, w) <= tile:
            tile = None  # fits one tile: the same gradient, and graph-capturable
        if tile is None and self.use_graphs and steps and self._graphs.should_capture((tuple(image.shape), steps)):
            try:
                captured = self._graphs.get(
                    (tuple(image.shape), steps),
                    lambda: CapturedOctave(self.step, tuple(image.shape), steps, image.device, self.graph_backend))
            except Exception as exc:  # capture unsupported here: the eager path gives the same result
                if _is_out_of_memory(exc):
                    raise
                self.use_graphs = False
                self._graphs.clear()
                self.note(f"CUDA graphs unavailable ({type(exc).__name__}: {first_line(exc, 120)}); "
                          "running eagerly")
            else:
                out = captured.run(image, rows, cols, rows_inv, cols_inv)
                if progress is not None:
                    progress.update(steps)
                return out
        image = image.clone()
        for k in range(steps):
            self.step(image, rows[k], cols[k], rows_inv[k], cols_inv[k], tile, tile_offsets[k])
            if progress is not None:
                progress.update(1)
        return image

    def _octave_with_fallback(self, image, shifts, tile, tile_offsets, progress):
        """Out of memory: retry the octave from its start with (smaller) tiles, and say so."""
        import torch

        counted = getattr(progress, "n", None)
        while True:
            try:
                return self._octave(image, shifts, tile, tile_offsets, progress)
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                h, w = image.shape[-2:]
                self._graphs.clear()
                if image.device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = (max(h, w) // 2 if tile is None else tile // 2) // 64 * 64
                if smaller < MIN_TILE:
                    raise CvtoolsError(f"out of memory dreaming at {w}x{h}, even with {MIN_TILE}-px tiles; "
                                       "try a smaller image") from None
                self.note(f"out of memory at {w}x{h}" + (f" with {tile}-px tiles" if tile else "")
                          + f"; retrying with {smaller}-px tiles")
                tile = smaller
                if counted is not None:  # the retried steps are counted again
                    progress.n = counted

    # ------------------------------------------------------------------ public
    @autotuned_step
    def __call__(self, image, seed: int = 0, progress=None):
        """Dream ``image`` ([0, 1] RGB, 3×H×W or 1×3×H×W, any device); same shape and device back.

        progress: an object with ``update(n)`` (e.g. a tqdm bar), advanced once per step.
        """
        import torch

        s = self.settings
        squeeze = image.dim() == 3
        x = image.unsqueeze(0) if squeeze else image
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise UsageError(f"dream takes one RGB image (3×H×W), got shape {tuple(image.shape)}")
        device = self.backbone.device
        with torch.inference_mode(False), torch.no_grad():
            original = x.detach().to(device=device, dtype=torch.float32).clone().clamp_(0, 1)
            h0, w0 = original.shape[-2:]
            h, w = self._working_size(h0, w0)
            if (h, w) != (h0, w0):
                self.note(f"{w0}x{h0} is smaller than the {self.backbone.min_size}-px minimum of "
                          f"{self.backbone.name}; dreaming at {w}x{h} and scaling back")
                original = resize(original, (h, w))
            sizes, tile = self.plan(h, w, given=(h0, w0))
            gen = torch.Generator().manual_seed(int(seed))
            # Every random number is drawn here, before any step runs, and moved once per image.
            shifts = torch.stack([draw_shifts(gen, s.steps, s.jitter) for _ in sizes]).to(device)
            tile_offsets = torch.randint(0, max(1, tile or 1), (len(sizes), s.steps, 2), generator=gen).tolist()
            bases = [resize(original, size) for size in sizes]
            dreamed = bases[0]
            for k, size in enumerate(sizes):
                if k:
                    detail = resize(dreamed - bases[k - 1], size)
                    dreamed = (bases[k] + detail).clamp_(0, 1)
                dreamed = self._octave_with_fallback(dreamed, shifts[k], tile, tile_offsets[k], progress)
            if (h, w) != (h0, w0):
                dreamed = resize(dreamed, (h0, w0)).clamp_(0, 1)
            out = dreamed.to(image.device)
        return out[0] if squeeze else out


def dream(image, backbone, layers: Union[None, str, Sequence[str]] = None, *, guide=None, seed: int = 0,
          progress=None, on_note=None, **settings):
    """DeepDream one image: ``dream(x, load_backbone(), layers=["blocks.10:0-15"], octaves=4)``.

    image: [0, 1] RGB tensor (3×H×W or 1×3×H×W). guide: an optional [0, 1] RGB tensor whose
    features the dream grows. Other keywords are :class:`DreamSettings` fields (octaves,
    octave_scale, steps, step_size, jitter, tile, margin, guide_size, fast). Returns a tensor of
    the input's shape. For many images, build one :class:`DreamEngine` and call it per image.
    """
    if isinstance(layers, str):
        layers = (layers,)
    engine = DreamEngine(backbone, DreamSettings(layers=tuple(layers) if layers else None, **settings),
                         guide=guide, on_note=on_note)
    return engine(image, seed=seed, progress=progress)
