"""Sanity check by cascading model randomisation (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

On a copy of the network, the parameter groups are re-initialised one after another from the top
(the classifier) down to the stem, and after each step every map is recomputed for the same class.
A map that explains the model must change as the model is destroyed: its Spearman rank correlation
with the original map should fall towards 0. One that stays high is showing the image (edges), not
the model. The backbone itself is never touched.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from cvtools.errors import UsageError


def _group_key(path: str) -> str:
    """A module path -> its randomisation group: up to the first numeric component (one block
    of a ModuleList/Sequential: ``_blocks.3``, ``layer2.1``, ``features.10``), else the top-level
    name (``_conv_head``, ``fc``)."""
    parts = path.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0]


def _run_order(model: nn.Module, example: torch.Tensor, modules: Dict[nn.Module, str]):
    """One forward pass: the order in which ``modules`` start (pre-hooks) and finish (hooks)."""
    started: Dict[nn.Module, int] = {}
    finished: Dict[nn.Module, int] = {}
    clock = itertools.count()
    handles = []

    def start(mod, inputs):  # hooks return None: a value would replace the inputs or the output
        started.setdefault(mod, next(clock))

    def finish(mod, inputs, output):
        finished.setdefault(mod, next(clock))

    for module in modules:
        handles += [module.register_forward_pre_hook(start), module.register_forward_hook(finish)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return started, finished


def parameter_groups(model: nn.Module, example: torch.Tensor,
                     layer_paths: Optional[Dict[str, str]] = None) -> List[Tuple[str, List[nn.Module]]]:
    """Groups of parameter-holding modules in the order the forward pass runs them.

    Without ``layer_paths`` a group is named by its module path (:func:`_group_key`: ``_blocks.14``).
    With a backbone's ``layer_paths`` (public layer name -> module path) it is named as
    ``cvtools layers`` names layers to users: after the first public layer whose output is
    complete once the group has run (``_conv_stem`` -> ``stem``, ``_blocks.14`` -> ``blocks.14``,
    ``_conv_head`` -> ``head``); one group after the last public layer is the ``classifier``
    (several keep their module paths: VGG's ``classifier.0``, ``.3``, ``.6``). Groups that get one
    name (an unfused convolution and its BatchNorm: ``conv1``, ``bn1`` -> ``stem``) are randomised
    as one step.
    """
    names = {m: n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    public = {}
    for layer, path in (layer_paths or {}).items():
        public.setdefault(model.get_submodule(path), layer)
    started, finished = _run_order(model, example, {**names, **public})
    groups: Dict[str, List[nn.Module]] = {}
    for module in sorted((m for m in started if m in names), key=started.get):
        groups.setdefault(_group_key(names[module]), []).append(module)
    if not public:
        return list(groups.items())
    outputs = sorted((finished[m], layer) for m, layer in public.items() if m in finished)
    after = {key: next((layer for t, layer in outputs if t >= max(finished.get(m, started[m]) for m in modules)), None)
             for key, modules in groups.items()}
    top = [key for key, layer in after.items() if layer is None]
    named: Dict[str, List[nn.Module]] = {}
    for key, modules in groups.items():
        name = after[key] or ("classifier" if len(top) == 1 else key)
        named.setdefault(name, []).extend(modules)
    return list(named.items())


@torch.no_grad()
def reinitialize(modules: Sequence[nn.Module], seed: int) -> None:
    """Fresh random weights for ``modules`` (their own default initialisation), reproducibly."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in modules:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
                if isinstance(m, nn.modules.batchnorm._BatchNorm):  # as trained-from-scratch: random affine
                    nn.init.normal_(m.weight, 1.0, 0.1)
                    nn.init.normal_(m.bias, 0.0, 0.1)
            else:
                for p in m.parameters(recurse=False):
                    nn.init.normal_(p, 0.0, 0.02)


def rankdata(values: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share their mean rank), as scipy.stats.rankdata: CAM maps have many
    exact zeros, which plain argsort ranks would order arbitrarily."""
    flat = values.flatten().double()
    uniq, inverse, counts = torch.unique(flat, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2  # 1-based average rank of each distinct value
    return mean_rank[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps; NaN when either is constant (an empty map has no
    ranking to compare: undefined, as in scipy, not 0, which would read as "decorrelated")."""
    ra, rb = rankdata(a.cpu()), rankdata(b.cpu())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.norm() * rb.norm()).item()
    return float((ra @ rb).item() / denominator) if denominator > 0 else float("nan")


#: Why a rho is undefined, by what was constant (see :meth:`ImageSanity.undefined_reason`).
FLAT_REASONS = {
    "empty": "randomised map empty (0 everywhere): no evidence for the class left",
    "flat": "randomised map flat (one value everywhere)",
    "original": "the original map is flat: nothing to compare",
    "constant": "a map is constant",
}
FLAT_TITLE = {"empty": "map empty: 0 everywhere, rho undefined", "flat": "map flat: one value, rho undefined",
              "original": "original flat: rho undefined", "constant": "undefined: a map is constant"}
FLAT_SHORT = {"empty": "map empty", "flat": "map flat", "original": "original flat", "constant": "undefined"}


def describe_rho(rho: float, reason: str = "constant") -> str:
    """``+0.42``, or where a map was constant what it was (``map empty``; :data:`FLAT_SHORT`)."""
    return FLAT_SHORT.get(reason, "undefined") if math.isnan(rho) else f"{rho:+.2f}"


def _flat(m: torch.Tensor) -> bool:
    return bool(m.max() == m.min())


@dataclass
class ImageSanity:
    """One image's check: ``groups[k]`` is the group randomised at step k+1 (with all above it),
    named as ``cvtools layers`` names layers (:func:`parameter_groups`).

    A rho is NaN where a map is constant: Spearman's correlation divides by both maps' rank
    spread, and a constant map has none, so no value is right (0 would claim a measured "no
    relation"; scipy gives NaN too). It happens: after Grad-CAM's lower layers are randomised
    on EfficientNet-Lite0 (chelsea.jpg, steps blocks.5 to stem), ``sum_c w_c A_c`` is negative at
    every position and its ReLU leaves an all-zero map, i.e. the method finds no evidence for
    the class at all, which is itself the map changing completely. So the output says what
    happened (``map empty``; :meth:`undefined_reason`) instead of a bare NaN, and the JSON has
    null with the reason beside it.
    """

    groups: List[str]
    correlations: Dict[str, List[float]]  # method -> Spearman rho after each step
    maps: Dict[str, torch.Tensor]  # method -> (steps+1)×H×W: the original map, then after each step

    def undefined_reason(self, method: str, step: int) -> str:
        """Why rho after ``step`` (0-based) is undefined, a key of :data:`FLAT_REASONS`: the original
        map was flat, the randomised one is empty (all 0) or flat; "constant" without the maps."""
        maps = self.maps.get(method)
        if maps is None or len(maps) <= step + 1:
            return "constant"
        if _flat(maps[0]):
            return "original"
        return "empty" if bool((maps[step + 1] == 0).all()) else "flat"

    def _reasons(self, method: str) -> Dict[int, str]:
        return {k: self.undefined_reason(method, k) for k, r in enumerate(self.correlations[method]) if math.isnan(r)}

    def describe(self) -> List[str]:
        lines = ["sanity: Spearman rank correlation with the original map as layers are randomised top-down"]
        seen = set()
        for m, rhos in self.correlations.items():
            reasons = self._reasons(m)
            seen.update(reasons.values())
            shown = ", ".join(f"{g} {describe_rho(r, reasons.get(k, ''))}"
                              for k, (g, r) in enumerate(zip(self.groups, rhos)))
            lines.append(f"  {m:<20} {shown}")
        for reason in sorted(seen):
            lines.append(f"  {FLAT_SHORT[reason]}: {FLAT_REASONS[reason]}; rho is undefined for a constant map")
        return lines

    def to_json(self) -> dict:
        # null where a map was constant (the correlation is undefined; JSON has no NaN), and
        # "undefined": method -> {group: why} for those steps
        out = {"groups": self.groups, "spearman": {m: [None if math.isnan(r) else round(r, 4) for r in v]
                                                   for m, v in self.correlations.items()}}
        undefined = {m: {self.groups[k]: FLAT_REASONS[why] for k, why in self._reasons(m).items()}
                     for m in self.correlations}
        if any(undefined.values()):
            out["undefined"] = {m: v for m, v in undefined.items() if v}
        return out


@dataclass
class SanityResult:
    groups: List[str]
    correlations: Dict[str, torch.Tensor]  # method -> steps×N
    maps: Dict[str, torch.Tensor]  # method -> (steps+1)×N×H×W

    def for_image(self, i: int) -> ImageSanity:
        return ImageSanity(self.groups, {m: [float(v) for v in c[:, i]] for m, c in self.correlations.items()},
                           {m: v[:, i] for m, v in self.maps.items()})


def cascading_randomization(backbone, x: torch.Tensor, methods: Sequence[str], target: torch.Tensor, seed: int = 0,
                            options: dict = None, progress: Optional[Callable[[int, int], None]] = None
                            ) -> SanityResult:
    """Maps of ``methods`` for images ``x`` on ever more randomised copies of the backbone.

    ``target``: the class index per image (kept fixed while the model is destroyed). ``options``:
    the methods' options (layer, samples, ...). ``progress(done, total)``: after each of the
    ``total`` maps, one per method on the network as it is, then one per method after each
    randomisation step (each map is the method's forward and backward passes over ``x``: one
    for a gradient, hundreds for occlusion or Score-CAM).
    """
    from cvtools.visualize.methods import make_methods

    if not backbone.layer_paths and getattr(backbone, "layers_note", ""):
        raise UsageError(f"the sanity check re-initialises the network layer by layer; {backbone.name}: "
                         f"{backbone.layers_note}", param="sanity")
    options = dict(options or {})
    target = target.to(x.device)
    try:
        with warnings.catch_warnings():  # torch warns about the fake tensors of a program it cannot copy
            warnings.simplefilter("ignore")
            model, saved = copy.deepcopy(backbone.model), None
    except Exception:  # a torch.export program's graph keeps symbolic tensors, which cannot be copied:
        # randomise the network itself and put every weight back afterwards
        model = backbone.model
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        shadow = dataclasses.replace(backbone, model=model, compiled=None, _layers=None)
        probe = backbone.prepare(x[:1])
        groups = parameter_groups(model, probe, backbone.layer_paths)
        bound = make_methods(methods, shadow, **options)
        count = itertools.count(1)
        total = len(bound) * (len(groups) + 1)

        def heatmap(method):
            out = method.heatmap(method.attribute(x, target)).float().cpu()
            if progress is not None:
                progress(next(count), total)
            return out

        history = {m.name: [heatmap(m)] for m in bound}
        names = []
        for step, (name, modules) in enumerate(reversed(groups)):
            reinitialize(modules, seed + step)
            names.append(name)
            for m in bound:
                history[m.name].append(heatmap(m))
    finally:
        if saved is not None:
            with torch.no_grad():
                model.load_state_dict(saved)
    maps = {name: torch.stack(v) for name, v in history.items()}
    correlations = {
        name: torch.tensor([[spearman(v[0, i], v[k, i]) for i in range(len(x))] for k in range(1, len(v))])
        for name, v in maps.items()
    }
    return SanityResult(names, correlations, maps)


def draw_sanity(photo, result: ImageSanity, methods, colormap=None, captions: bool = True, columns: int = 7):
    """A grid: one row per method, the original map then the maps after a few randomisation steps
    (evenly spaced, always including the last), each labelled with its rank correlation."""
    from PIL import Image

    from cvtools.io.decode import pil_to_tensor
    from cvtools.visualize.catalog import METHOD_INFO
    from cvtools.visualize.render import display_size, grid, overlay, to_pil

    steps = len(result.groups)
    # The classifier step, then evenly down to the stem.
    picks = sorted({1} | {round(k * steps / (columns - 2)) for k in range(1, columns - 1)} - {0})
    size = display_size(*photo.size, short_side=160, long_max=240)
    image = pil_to_tensor(photo.convert("RGB").resize(size, Image.BICUBIC, reducing_gap=3.0)).clamp_(0, 1)
    tiles, labels, seen = [], [], set()
    for m in methods:
        info = METHOD_INFO[m.name]
        maps = result.maps[m.name]
        for k in [0] + picks:
            tiles.append(to_pil(overlay(image, maps[k], colormap or info.colormap, 0.75,
                                        1.0 if info.pixel_level else 0.5)))
            if k == 0:
                labels.append(f"{info.title}: original")
            else:
                rho = result.correlations[m.name][k - 1]
                why = result.undefined_reason(m.name, k - 1) if math.isnan(rho) else ""
                seen.add(why)
                labels.append(f"to {result.groups[k - 1]}: " + (describe_rho(rho, why) if why else f"rho {rho:+.2f}"))
    title = ("Cascading randomisation (Adebayo et al. 2018), top layers first. rho: Spearman rank "
             "correlation with the original map") if captions else None
    if title and seen - {""}:  # what "map empty" means, in the one line there is
        title = ("Cascading randomisation (Adebayo et al. 2018), top layers first. rho: rank correlation with the "
                 "original; " + "; ".join(FLAT_TITLE[w] for w in sorted(seen - {""})))
    return grid(tiles, labels if captions else [], columns=len(picks) + 1, title=title)
