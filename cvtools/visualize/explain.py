"""Explaining images with several methods at once: the engine behind ``cvtools visualize METHOD``.

>>> from cvtools.visualize import Explainer
>>> explainer = Explainer(backbone, ["gradcam", "smoothgrad"])
>>> results = explainer.explain(batch)                 # N×3×H×W in [0, 1] on backbone.device
>>> picture = draw_explanation(photo, results[0], explainer.methods)   # a PIL panel
>>> reports = explainer.run(batch, metrics=True, sanity=True)   # + trust checks, per image
>>> reports[0].to_json(), reports[0].details()                  # what --json / the terminal show

:func:`precision_for` is the precision policy: which methods need fp32 gradients under ``auto``.

Images of one batch share a size; :func:`analysis_size` gives every photo of a similar shape the
same size (short side ``size``, long side a multiple of 32), so a folder of phone photos runs in
full batches without cropping anyone's subject away.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from PIL import Image

from cvtools.device import autotuned_step
from cvtools.errors import UsageError
from cvtools.visualize.attribution import Attribution, percentile_normalize, signed_to_rgb
from cvtools.visualize.cam import check_layer_name
from cvtools.visualize.methods import make_methods, usable_methods
from cvtools.visualize.model import Target, check_image_batch, checked_target, predict


def analysis_size(width: int, height: int, size: int = 224, multiple: int = 32,
                  max_aspect: float = 4.0) -> Tuple[int, int]:
    """(width, height) the network sees: the short side ``size``, the long side rounded to a
    multiple of ``multiple`` (at most a few per cent of stretch) so similar photos batch together.
    Beyond ``max_aspect``:1 the long side is capped (a 3×1000 strip would otherwise become a
    224×75000 tensor); such strips are squeezed."""
    short, long = min(width, height), max(width, height)
    scaled_long = max(size, round(long * size / short / multiple) * multiple)
    scaled_long = min(scaled_long, int(max_aspect * size) // multiple * multiple or size)
    return (scaled_long, size) if width >= height else (size, scaled_long)


def analysis_tensor(image: Image.Image, size: int = 224) -> torch.Tensor:
    """A PIL image -> 3×H×W [0, 1] tensor at :func:`analysis_size` (antialiased bicubic)."""
    from cvtools.io.decode import pil_to_tensor

    w, h = analysis_size(*image.size, size=size)
    return pil_to_tensor(image.convert("RGB").resize((w, h), Image.BICUBIC, reducing_gap=3.0)).clamp_(0, 1)


@dataclass
class Explanation:
    """One image's results, on the CPU."""

    target: int  # the class explained
    label: str  # its name
    probability: float  # its probability (softmax; a multi-label head's own sigmoid)
    attributions: Dict[str, torch.Tensor] = field(default_factory=dict)  # method -> raw attribution
    heatmaps: Dict[str, torch.Tensor] = field(default_factory=dict)  # method -> H×W in [0, 1]
    pictures: Dict[str, torch.Tensor] = field(default_factory=dict)  # method -> 3×H×W, for gradient methods
    diagnostics: Dict[str, dict] = field(default_factory=dict)  # method -> facts worth reporting (IG's gap)


def needs_fp32(methods: Sequence[str]) -> bool:
    """Pixel-space gradients underflow in fp16; only the CAM family (gradients at a late layer)
    keeps the GPU's fp16 default. Not Ablation-CAM: its weights are differences of nearly equal
    logits, which fp16 rounds to a few hundredths."""
    from cvtools.visualize.catalog import METHOD_INFO

    return any(not METHOD_INFO[m].uses_layer or METHOD_INFO[m].gradient_display or m == "ablationcam"
               for m in methods)


def precision_for(methods: Sequence[str], precision: str = "auto") -> str:
    """The backbone precision to explain ``methods`` with: ``precision``, except that ``auto``
    becomes fp32 when a method needs it (:func:`needs_fp32`)."""
    return "fp32" if precision == "auto" and needs_fp32(methods) else precision


@contextmanager
def stage(on_stage, what: str):
    """Tell ``on_stage`` (if given) that ``what`` starts, then that it ended and how long it took:
    the checks run for minutes on a CPU, and a log or pipe shows no progress bar."""
    if on_stage is None:
        yield
        return
    on_stage(f"{what}...")
    start = time.perf_counter()
    yield
    on_stage(f"{what}: done in {time.perf_counter() - start:.1f} s")


@dataclass
class ExplainReport:
    """One image's explanation and, when asked, its trust checks: ``metrics`` (method ->
    :class:`~cvtools.visualize.metrics.CausalScores`) and ``sanity`` (an
    :class:`~cvtools.visualize.sanity.ImageSanity`)."""

    explanation: Explanation
    metrics: Optional[Dict[str, object]] = None
    sanity: Optional[object] = None

    @property
    def headline(self) -> str:
        """'label (index) 38.7%'."""
        e = self.explanation
        return f"{e.label} ({e.target}) {e.probability:.1%}"

    def details(self) -> List[str]:
        """Lines worth reporting under the headline: each method's diagnostics (IG's steps and
        gap), its faithfulness scores, the sanity check's correlations."""
        from cvtools.visualize.attribution import describe_diagnostics

        lines = [f"{m:<20} {describe_diagnostics(d)}" for m, d in self.explanation.diagnostics.items()]
        lines += [f"{m:<20} {scores.describe()}" for m, scores in (self.metrics or {}).items()]
        if self.sanity is not None:
            lines += self.sanity.describe()
        return lines

    def to_json(self) -> dict:
        """target, label, probability, diagnostics (if any), metrics and sanity (when run)."""
        e = self.explanation
        out = {"target": e.target, "label": e.label, "probability": round(e.probability, 6)}
        if e.diagnostics:
            out["diagnostics"] = e.diagnostics
        if self.metrics is not None:
            out["metrics"] = {m: s.to_json() for m, s in self.metrics.items()}
        if self.sanity is not None:
            out["sanity"] = self.sanity.to_json()
        return out


class Explainer:
    """Several attribution methods over batches of images, one class target per image.

    ``target``: None (each image's top class), a class index or name. ``layer``: the CAM layer
    (default ``backbone.defaults.cam``). Other keyword options go to the methods that take them
    (``samples``, ``noise``, ``seed``, ``steps``, ``window``, ``stride``, ``internal_batch_size``).
    A method that cannot run on this network (CAMs without tappable layers, guided backprop
    without ReLUs) is a UsageError, unless it is one of ``optional`` (what ``all`` brought in):
    those are left out, with one note through ``on_note``, which also hears (once per method) of
    maps that are zero everywhere. ``on_stage(text)`` hears as each slow check of :meth:`run`
    starts and ends; ``on_progress(done, total)`` how far it is (the metrics' forward passes, the
    sanity check's maps).
    """

    def __init__(self, backbone, methods: Sequence[str], target: Target = None, layer: Optional[str] = None,
                 optional: Sequence[str] = (), on_note=None, on_stage=None, on_progress=None, **options):
        from cvtools.visualize.catalog import METHOD_INFO

        self.backbone = backbone
        self.target = checked_target(target, backbone.categories)  # once: not an error per image
        self.on_note = on_note
        self.on_stage = on_stage  # told as each slow check (metrics, sanity) starts and ends
        # told (done, total) within each slow check: the metrics' forward passes, the sanity check's maps
        self.on_progress = on_progress
        self._zero_noted: set = set()  # methods whose all-zero maps were noted
        self.options = dict(options, layer=layer)  # what a method needs to be rebuilt (sanity check)
        methods = usable_methods(methods, backbone, optional, layer, on_note)
        if any(METHOD_INFO[m].uses_layer for m in methods):  # a bad --layer: once, not from each photo's forward
            check_layer_name(backbone, layer, "cam", feature_map=True)
        self.methods: List[Attribution] = make_methods(methods, backbone, layer=layer, **options)

    @autotuned_step
    def explain(self, x: torch.Tensor, answer_from: Optional[torch.Tensor] = None,
                targets: Optional[torch.Tensor] = None) -> List[Explanation]:
        """Each image's class (its top class, or the target) and the methods' maps for it.

        ``answer_from``: the same images as the network was evaluated on (N×3×h×w, e.g.
        :func:`cvtools.classify.answer_tensor`'s centre crops): the class and its probability
        are read from these, as ``cvtools classify`` reads them, while the maps cover ``x``.
        None: both from ``x``. ``targets``: one class index per image, instead of the explainer's
        ``target`` (the true classes of misclassified photos)."""
        x = check_image_batch(x, self.backbone)
        answer = x if answer_from is None else check_image_batch(answer_from, self.backbone)
        if answer.shape[0] != x.shape[0]:
            raise UsageError(f"answer_from has {answer.shape[0]} images for {x.shape[0]}", param="answer_from")
        idx, prob, _ = predict(self.backbone, answer, self.target if targets is None else targets)
        results = [Explanation(int(i), self.backbone.categories[int(i)], float(p)) for i, p in zip(idx.cpu(), prob.cpu())]
        zero = []
        for method in self.methods:
            attribution = method.attribute(x, idx)
            heat = method.heatmap(attribution).float().cpu()
            raw = attribution.float().cpu()
            if method.name not in self._zero_noted and bool((raw.flatten(1).abs().amax(dim=1) == 0).any()):
                zero.append(method.name)
            picture = signed_to_rgb(attribution).float().cpu() if method.display == "gradient" else None
            diagnostics = method.diagnostics()
            for i, r in enumerate(results):
                r.attributions[method.name] = raw[i]
                r.heatmaps[method.name] = heat[i]
                if picture is not None:
                    r.pictures[method.name] = picture[i]
                if diagnostics is not None:
                    r.diagnostics[method.name] = diagnostics[i]
        self._note_zero_maps(zero)
        return results

    def _note_zero_maps(self, names: List[str]) -> None:
        """One note for maps that are zero everywhere: drawn, they are the plain photo, which
        would otherwise pass for "nothing stands out"."""
        if not names or self.on_note is None:
            return
        self._zero_noted.update(names)
        from cvtools.visualize.catalog import METHOD_INFO

        what = " / ".join(dict.fromkeys("layer" if METHOD_INFO[m].uses_layer else "input" for m in names))
        why = (self._after_readout() if all(METHOD_INFO[m].uses_layer for m in names) else None) \
            or f"the model's output does not depend on this {what} (e.g. an untrained head)"
        self.on_note(f"{', '.join(names)}: the map is zero everywhere for at least one image: {why}")

    def _after_readout(self) -> Optional[str]:
        """Why a token layer's map is zero when the layer comes after the class-token read-out: in
        a ViT only the class token reaches the logits after the last block's attention, so every
        patch token there has a zero gradient whatever the weights; None for other layers."""
        from cvtools.backbones.tokens import TokenGrid

        bb = self.backbone
        layer, default = self.options.get("layer") or bb.defaults.cam, bb.defaults.cam
        order, view = list(bb.layer_paths), bb.layer_views.get(layer)
        # No leading (class) token: the patch tokens are pooled and do reach the logits.
        if not isinstance(view, TokenGrid) or not view.extra or default not in order or layer not in order \
                or order.index(layer) <= order.index(default):
            return None
        return (f"{layer} comes after the class-token read-out (only the class token reaches the logits after the "
                f"last block's attention, so the patch tokens get no gradient); pick {default} (the default) or an earlier layer")


    @autotuned_step
    def run(self, x: torch.Tensor, metrics: bool = False, sanity: bool = False,
            answer_from: Optional[torch.Tensor] = None) -> List[ExplainReport]:
        """:meth:`explain`, plus on request the trust checks, one report per image.

        ``metrics``: deletion / insertion AUC and ROAD of each map beside a random map's
        (:func:`~cvtools.visualize.metrics.faithfulness`). ``sanity``: the model-randomisation
        check (:func:`~cvtools.visualize.sanity.cascading_randomization`); integrated gradients
        there runs the steps the real model needed (``auto`` would chase the noise). Both use the
        explainer's ``seed`` and ``internal_batch_size`` (default 32). ``answer_from``: as in
        :meth:`explain`.
        """
        results = self.explain(x, answer_from)
        x = check_image_batch(x, self.backbone)
        reports = [ExplainReport(r) for r in results]
        names = [m.name for m in self.methods]
        target = torch.tensor([r.target for r in results])
        seed = self.options.get("seed", 0) or 0
        if metrics:
            from cvtools.visualize.metrics import faithfulness

            heat = {m: torch.stack([r.heatmaps[m] for r in results]) for m in names}
            with stage(self.on_stage, f"metrics of {', '.join(names)} ({len(x)} image{'s' if len(x) > 1 else ''})"):
                scores = faithfulness(self.backbone, x, heat, target, seed=seed,
                                      batch_size=self.options.get("internal_batch_size") or 32,
                                      progress=self.on_progress)
            for i, report in enumerate(reports):
                report.metrics = {m: s[i] for m, s in scores.items()}
        if sanity:
            from cvtools.visualize.sanity import cascading_randomization

            steps = [d["steps"] for r in results for d in r.diagnostics.values() if "steps" in d]
            with stage(self.on_stage, f"sanity check of {', '.join(names)} ({len(x)} image{'s' if len(x) > 1 else ''})"):
                checks = cascading_randomization(self.backbone, x, names, target, seed=seed,
                                                 options=dict(self.options, **({"steps": max(steps)} if steps else {})),
                                                 progress=self.on_progress)
            for i, report in enumerate(reports):
                report.sanity = checks.for_image(i)
        return reports


def draw_explanation(photo: Image.Image, result: Explanation, methods: Sequence[Attribution],
                     colormap: Optional[str] = None, alpha: float = 0.7, captions: bool = True,
                     name: str = "") -> Image.Image:
    """The picture for one image: its overlay (one method), or the photo and one tile per method.

    Tiles are drawn at :func:`~cvtools.visualize.render.display_size` of the original photo, maps
    upsampled to it, each captioned with the class, its probability and the method. ``colormap``
    None picks each method's own (jet for region maps, inferno for pixel maps). Pixel maps are
    blurred by one analysis pixel for display only (they are being enlarged anyway; the saved
    raw maps and the metrics use the unblurred ones).
    """
    from cvtools.io.decode import pil_to_tensor
    from cvtools.visualize.catalog import METHOD_INFO
    from cvtools.visualize.render import (
        captioned,
        display_size,
        gaussian_blur,
        overlay,
        resize_map,
        side_by_side,
        to_pil,
    )

    size = display_size(*photo.size)
    image = pil_to_tensor(photo.convert("RGB").resize(size, Image.BICUBIC, reducing_gap=3.0)).clamp_(0, 1)
    hw = (size[1], size[0])
    headline = f"{result.label} ({result.target}) · {result.probability:.1%}"

    def tile(method):
        if method.name in result.pictures:
            pic = result.pictures[method.name]
            pic = torch.stack([resize_map(c, hw) for c in pic]).clamp(0, 1)
        else:
            info = METHOD_INFO[method.name]
            heat = result.heatmaps[method.name]
            if info.pixel_level:
                heat = percentile_normalize(gaussian_blur(heat, 1.0)[None])[0]
            pic = overlay(image, heat, colormap or info.colormap, alpha, 1.0 if info.pixel_level else 0.5)
        return to_pil(pic)

    def caption_for(method, single):
        detail = method.describe()
        if method.name in result.diagnostics:  # this image's own facts (IG: steps, completeness gap)
            from cvtools.visualize.attribution import describe_diagnostics

            detail = describe_diagnostics(result.diagnostics[method.name], short=True)
        if single:
            return [headline, f"{method.title}" + (f" · {detail}" if detail else "")]
        return [method.title, detail]

    if len(methods) == 1:
        t = tile(methods[0])
        return captioned(t, caption_for(methods[0], True)) if captions else t
    tiles = [to_pil(image)] + [tile(m) for m in methods]
    if captions:
        tiles = [captioned(tiles[0], [headline, name])] + [
            captioned(t, caption_for(m, False)) for t, m in zip(tiles[1:], methods)]
    return side_by_side(tiles)
