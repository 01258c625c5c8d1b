"""Any painting, or a blend of paintings and bundled styles, in one pass of the any-painting
network: the Python API behind ``cvtools stylize --style painting.jpg``.

>>> from cvtools.style.painting import NetworkPaintingStylizer
>>> stylizer = NetworkPaintingStylizer(["painting.jpg"])              # encoded once, here
>>> out = stylizer(photo)                                             # 3×H×W in [0, 1] (or PIL) → 3×H×W
>>> blend = NetworkPaintingStylizer([("mona", 0.7), ("painting.jpg", 0.3)])
>>> out = blend(photo, strength=0.5)     # half-way between the photo's own style and the blend's

A style is a bundled style's name (its painting's embedding ships in the network's record), a
painting (path, PIL image or 3×H×W tensor in [0, 1]) or an embedding (a 1-D tensor, e.g. saved
from :meth:`ArbitraryStylizer.encode`). Weights are normalised to sum to 1. ``strength`` mixes in
style space: ``(1 - s)·embedding(photo) + s·embedding(style)``, so half strength paints
half-strength strokes instead of laying a faint copy of the full-strength picture over the photo.

Closer to a painting at the same speed per photo: ``fit_steps=N`` fits the network's style
parameters to each painting once (:mod:`cvtools.style.arbitrary_fit`; ``fit_photos``: photos to
fit on, e.g. the first of a folder), then every photo runs at network speed:

>>> stylizer = NetworkPaintingStylizer(["painting.jpg"], fit_steps=100, fit_photos=[photo])

Closer still, for one painting: ``fit_network=True`` fits every weight of the network as well
(:meth:`~cvtools.style.arbitrary_fit.StyleFitter.fit_network`; a few seconds on a GPU).

For the painting's own look at higher fidelity (seconds to minutes per photo), optimise from this
network's result: :class:`cvtools.style.optimize.PaintingStylizer` with ``init=``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from cvtools.errors import UsageError
from cvtools.style.records import normalized_weights

#: images with a shorter side below this are stylized at this size and brought back (the
#: transformer's reflection padding and its 1/16 bottleneck need a few pixels)
MIN_SIDE = 32


def _as_styles(styles) -> List[Tuple[object, float]]:
    """``styles`` as [(source, weight), ...]: one source alone, a list of sources, or of pairs."""
    if isinstance(styles, (str, os.PathLike, torch.Tensor)) or not isinstance(styles, (list, tuple)):
        styles = [styles]
    out = []
    for item in styles:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (int, float)) \
                and not isinstance(item[1], bool):
            out.append((item[0], float(item[1])))
        else:
            out.append((item, 1.0))
    if not out:
        raise UsageError("give at least one style (a bundled name, a painting or an embedding)", param="styles")
    return out


def style_stem(source) -> str:
    """The name a style gives outputs: a bundled name, a painting file's stem, else "painting"."""
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        return Path(text).stem if os.sep in text or "." in Path(text).name else text
    return "embedding" if isinstance(source, torch.Tensor) and source.dim() == 1 else "painting"


class NetworkPaintingStylizer:
    """Paintings and bundled styles, encoded once, painted onto any number of photos.

    styles: see the module. device: auto | cpu | cuda | cuda:N | mps. precision: auto (fp16 on
    GPUs, fp32 on CPUs) | fp32 | fp16 | bf16 (the transformer's; the style encoder is fp32).
    weights/sha256: another network file (default: the bundled one, its SHA-256 pinned).
    on_note: one-line messages for the user (None: silent; settable as ``.on_note``).

    Called like :class:`~cvtools.style.stylize.Stylizer`: ``stylizer(image, strength=...,
    preserve_color=...)`` → 3×H×W float on the CPU (uint8 with ``as_uint8``).
    """

    def __init__(self, styles, device: str = "auto", precision: str = "auto", compile: bool = False,
                 on_note: Optional[Callable[[str], None]] = None, name: Optional[str] = None, weights=None,
                 sha256: Optional[str] = None, fit_steps: int = 0, fit_photos: Sequence = (),
                 fit_progress: Optional[Callable[[str, int, int, Optional[float]], None]] = None,
                 painting_size: Optional[int] = None, fit_network: bool = False):
        from cvtools.device import resolve_device, resolve_precision
        from cvtools.style.arbitrary import ArbitraryStylizer, check_painting_size
        from cvtools.timings import mark

        styles = _as_styles(styles)
        weights_ = normalized_weights([w for _, w in styles])  # a bad weight is refused before any loading
        if fit_network and (len(styles) != 1 or not _is_painting(styles[0][0])):
            raise UsageError("fitting the network fits one painting: give a single painting, not a blend or a "
                             "bundled style (a blend's paintings can each have their style parameters fitted)",
                             param="fit_network")
        #: the long side paintings are read at (None: the network's own; bundled styles keep theirs)
        self.painting_size = check_painting_size(painting_size)
        mark("imports")
        self.device = resolve_device(device)
        dtype = resolve_precision(precision, self.device)
        self.network = ArbitraryStylizer(weights, device=str(self.device), sha256=sha256,
                                         precision={torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32"))
        mark("model")
        #: [(embedding, weight)] in the order given, and their blend: what every photo is painted with
        #: (with ``fit_steps``: each painting's fitted style parameters, the others' parameters)
        # paintings decoded once: encoded here, and fitted to below with fit_steps
        paintings = {i: _painting_tensor(source) for i, (source, _) in enumerate(styles) if _is_painting(source)}
        self.styles = [(self.network.encode(paintings[i], self.painting_size) if i in paintings
                        else self.embedding_of(source), w)
                       for i, ((source, _), w) in enumerate(zip(styles, weights_))]
        if (fit_steps or fit_network) and not paintings:
            raise UsageError("fitting fits the network to paintings, and these styles have none (bundled names and "
                             "embeddings keep their parameters)", param="fit_steps")
        if fit_steps or fit_network:
            self.styles = self._fitted(styles, paintings, fit_steps, fit_photos, fit_progress, on_note, fit_network)
        self.embedding = self.network.blend(self.styles)
        if compile:  # after a network fit, which replaces the transformer
            from cvtools.compile_cache import activate

            activate(self.device)  # compiled once per machine: kept in cvtools' compile cache
            self.network.transformer = torch.compile(self.network.transformer, dynamic=False)
        self.name = name or "+".join(dict.fromkeys(style_stem(s) for s, _ in styles))
        self.on_note = on_note
        self.last_tiles = 0  # Stylizer's interface: this one never tiles

    @property
    def dtype(self):
        return self.network.dtype

    # -------------------------------------------- batches (folders and video frames on a GPU)
    #: ``strength`` is mixed in style space by :meth:`stylize_tensor`: callers must not mix the
    #: pixels again (a :class:`~cvtools.style.stylize.Stylizer`'s strength is a pixel mix)
    strength_in_style = True

    def tile_side(self, tile, h, w) -> None:
        """None: every image goes whole (Stylizer's interface; the network is small enough)."""
        return None

    def bytes_per_pixel(self) -> int:
        return self.network.bytes_per_pixel()

    def activation_budget(self) -> int:
        from cvtools.style.stylize import activation_budget

        return activation_budget(self.device)

    def batch_limit(self, height: int, width: int, most: int = 8) -> int:
        """As :meth:`cvtools.style.stylize.Stylizer.batch_limit`: up to ``most`` images of this
        size per pass, as the activation budget allows (at least 1)."""
        from cvtools.style.stylize import images_per_pass

        return images_per_pass(self.bytes_per_pixel(), self.activation_budget(), height, width, most)

    def batchable(self, height: int, width: int, strength: float = 1.0, tile="auto") -> bool:
        """Whether an image of this size goes through :meth:`stylize_batch` as :meth:`__call__`
        would paint it (some style, not so small that it is painted larger)."""
        return strength > 0.0 and min(height, width) >= MIN_SIDE

    def stylize_tensor(self, images: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """The network on a batch N×3×H×W in [0, 1] (any device) in one pass, ``strength`` mixed in
        style space → N×3×H×W on the device (the transformer's dtype); no colour keeping."""
        return self.network.paint(images, self.embedding, float(strength))

    def stylize_batch(self, images, strength: float = 1.0, preserve_color: bool = False,
                      on_device: bool = False, queued: bool = False) -> List[torch.Tensor]:
        """Same-size 8-bit photos in one pass, as :meth:`__call__` with ``as_uint8=True`` paints
        each (callers check :meth:`batchable`); ``images``, ``queued`` and the results as
        :meth:`cvtools.style.stylize.Stylizer.stylize_batch`'s."""
        from cvtools.style.stylize import batch_results, finish_pixels, upload_batch

        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 < strength <= 1.0:
            raise UsageError(f"strength must be above 0 and at most 1 for a batch, not {strength}", param="strength")
        with torch.inference_mode():
            original = upload_batch(images, self.device).permute(0, 3, 1, 2).float().div_(255.0)
            result = finish_pixels(self.stylize_tensor(original, strength), original, 1.0, preserve_color)
            return batch_results(result, on_device, queued)

    def _fitted(self, styles, paintings, steps, photos, progress, on_note,
                network: bool = False) -> List[Tuple[torch.Tensor, float]]:
        """Each painting (``paintings``: index → tensor) fitted on ``photos``
        (:mod:`cvtools.style.arbitrary_fit`) from its encoding; the other styles as their parameters.
        ``network``: the one painting's transformer weights too, put into :attr:`network`."""
        from cvtools.io.decode import load_image
        from cvtools.style.arbitrary_fit import NETWORK_FIT_STEPS, StyleFitter

        photos = [_photo_tensor(load_image(p).rgb if isinstance(p, (str, os.PathLike)) else p) for p in photos]
        fitter, out = None, []
        for i, ((source, _), (embedding, w)) in enumerate(zip(styles, self.styles)):
            if i not in paintings:
                out.append((self.network.style_params(embedding)[0].cpu(), w))
                continue
            fitter = fitter or StyleFitter(self.network, on_note=on_note)
            label = style_stem(source)
            report = (lambda done, total, loss, label=label: progress(label, done, total, loss)) if progress else None
            if network:
                fitted = fitter.fit_network(paintings[i], photos, steps=steps or NETWORK_FIT_STEPS, start=embedding,
                                            progress=report, painting_side=self.painting_size)
                self.network.load_transformer(fitted.transformer)
                out.append((fitted.params, w))
                continue
            out.append((fitter.fit(paintings[i], photos, steps=steps, start=embedding, progress=report,
                                   painting_side=self.painting_size), w))
        return out

    def embedding_of(self, source) -> torch.Tensor:
        """A style's embedding: a bundled name's stored one, a painting's encoding, or the tensor."""
        from cvtools.style.arbitrary import (
            bundled_embedding_names,
            bundled_style_embedding,
            checked_embedding,
            with_token_places,
        )

        source = with_token_places(source, self.network.config.embedding_dim, getattr(self.network, "style_tokens", 0))
        if isinstance(source, torch.Tensor) and source.dim() == 1:
            return checked_embedding(source, self.network.config.embedding_dim)
        if isinstance(source, str) and source in bundled_embedding_names() and not Path(source).is_file():
            return bundled_style_embedding(source)
        return self.network.encode(_painting_tensor(source), self.painting_size)

    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False, tile=None,
                 progress=None, as_uint8: bool = False) -> torch.Tensor:
        """Stylize one image (3×H×W float in [0, 1], or PIL) → 3×H×W on the CPU. ``tile`` and
        ``progress`` are accepted for Stylizer's interface (the image goes whole)."""
        from cvtools.style.limits import checked_strength
        from cvtools.style.stylize import finish_pixels

        strength = checked_strength(strength)
        photo = _photo_tensor(image)
        if strength == 0.0:
            return photo.clone()
        h, w = photo.shape[-2:]
        work = photo
        if min(h, w) < MIN_SIDE:  # icons, 1-pixel images: painted larger, brought back down
            f = MIN_SIDE / min(h, w)
            size = (max(MIN_SIDE, round(h * f)), max(MIN_SIDE, round(w * f)))
            work = torch.nn.functional.interpolate(photo[None], size=size, mode="bilinear", align_corners=False)[0]
        out = self.network.stylize(work, self.embedding, strength=float(strength))
        if work is not photo:
            out = torch.nn.functional.interpolate(out[None], size=(h, w), mode="area")[0]
        # strength is already in the style: the pixels are not mixed again
        result = finish_pixels(out, photo, 1.0, preserve_color)
        if as_uint8 and bool(torch.isfinite(result).all()):
            from cvtools.io.decode import to_uint8

            return to_uint8(result)
        return result


#: optimisation steps at the coarsest level when refining the network's result. Measured on 2
#: CPU cores (chelsea + monet, coffee + shipwreck, the optimiser's own loss): 100 steps from the
#: network reach 0.90× and 1.27× the total loss of the 200 steps from the photo, in 0.50× and
#: 0.60× the time; 60 steps 0.94× and 1.67× (benchmarks/arbitrary/PLAN.md)
REFINE_STEPS = 100


class RefinedPaintingStylizer:
    """The network's picture, then optimised towards the paintings (``cvtools stylize --refine``):
    the optimisation's fidelity in fewer steps, because it starts from a painted picture.

    network: a :class:`NetworkPaintingStylizer`; paintings: [(painting, weight)] as
    :class:`~cvtools.style.optimize.PaintingStylizer` takes them (files, PIL images or tensors: the
    optimisation needs the pictures, not embeddings); settings overrides go to it (``steps``
    defaults to :data:`REFINE_STEPS`). ``strength`` mixes pixels here: the optimisation has no
    style space.
    """

    def __init__(self, network: NetworkPaintingStylizer, paintings, **overrides):
        from cvtools.style.optimize import PaintingStylizer

        overrides.setdefault("steps", REFINE_STEPS)
        shared = network.network.backbone if network.device.type == "cpu" else None  # fp32 Lite0 either way
        self.network = network
        self.optimizer = PaintingStylizer(paintings, device=str(network.device), backbone=shared,
                                          name=network.name, **overrides)
        self.name = network.name
        self.last_tiles = 0

    @property
    def on_note(self):
        return self.network.on_note

    @on_note.setter
    def on_note(self, printer) -> None:
        self.network.on_note = self.optimizer.on_note = printer

    @property
    def callback(self):
        return self.optimizer.callback

    @callback.setter
    def callback(self, callback) -> None:
        self.optimizer.callback = callback

    @property
    def seed(self) -> int:
        return self.optimizer.seed

    @seed.setter
    def seed(self, seed: int) -> None:
        self.optimizer.seed = seed

    def __call__(self, image, strength: float = 1.0, preserve_color: bool = False, tile=None,
                 progress=None, as_uint8: bool = False) -> torch.Tensor:
        photo = _photo_tensor(image)
        start = self.network(photo)
        return self.optimizer(photo, strength=strength, preserve_color=preserve_color, as_uint8=as_uint8,
                              init=start)


def _is_painting(source) -> bool:
    """Whether a style source is a painting to encode (not a bundled name nor an embedding)."""
    from cvtools.style.arbitrary import bundled_embedding_names

    if isinstance(source, torch.Tensor) and source.dim() == 1:
        return False
    return not (isinstance(source, str) and source in bundled_embedding_names() and not Path(source).is_file())


def _photo_tensor(image) -> torch.Tensor:
    from cvtools.io.decode import one_image, pil_to_tensor

    image = one_image(image, "photo")
    return image if torch.is_tensor(image) else pil_to_tensor(image)


def _painting_tensor(source) -> torch.Tensor:
    """A painting (path, PIL image or 3×H×W tensor) as 3×H×W floats in [0, 1]; a path is read
    with every check of :func:`cvtools.style.records.load_painting` (one line naming the file)."""
    from cvtools.style.optimize import _painting_tensor as checked
    from cvtools.style.records import load_painting

    if isinstance(source, (str, os.PathLike)):
        source = load_painting(source)
    if not torch.is_tensor(source) and hasattr(source, "convert") and min(source.size) > HUGE_PAINTING_SIDE:
        # the encoder sees the painting at 256 px on its short side: a 100-megapixel scan would
        # otherwise become 1.2 GB of floats first; box-filtered to 1024 px, then resized as usual
        from PIL import Image

        w, h = source.size
        f = 1024 / min(w, h)
        source = source.convert("RGB").resize((max(1, round(w * f)), max(1, round(h * f))), Image.BOX)
    return checked(source)[0]


#: paintings whose short side is above this are shrunk before they become tensors
HUGE_PAINTING_SIDE = 2048


def stylize_with_network(image, styles: Sequence, strength: float = 1.0, device: str = "auto") -> torch.Tensor:
    """One-shot convenience: ``stylize_with_network(photo, ["painting.jpg"])`` → 3×H×W tensor."""
    return NetworkPaintingStylizer(styles, device=device)(image, strength=strength)
