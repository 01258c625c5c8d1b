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
import math
import warnings
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

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


def parameter_groups(model: nn.Module, example: torch.Tensor) -> List[Tuple[str, List[nn.Module]]]:
    """Groups of parameter-holding modules in the order the forward pass runs them."""
    order: Dict[nn.Module, int] = {}
    handles = []
    names = {}
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            names[module] = name

            def hook(mod, inputs):
                order.setdefault(mod, len(order))

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    groups: Dict[str, List[nn.Module]] = {}
    for module in sorted(order, key=order.get):
        groups.setdefault(_group_key(names[module]), []).append(module)
    return list(groups.items())


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


def describe_rho(rho: float) -> str:
    """``+0.42``, or ``undefined (empty map)`` where a map was constant."""
    return "undefined (empty map)" if math.isnan(rho) else f"{rho:+.2f}"


@dataclass
class ImageSanity:
    """One image's check: ``groups[k]`` is the group randomised at step k+1 (with all above it)."""

    groups: List[str]
    correlations: Dict[str, List[float]]  # method -> Spearman rho after each step
    maps: Dict[str, torch.Tensor]  # method -> (steps+1)×H×W: the original map, then after each step

    def describe(self) -> List[str]:
        lines = ["sanity: Spearman rank correlation with the original map as layers are randomised top-down"]
        for m, rhos in self.correlations.items():
            shown = ", ".join(f"{g} {describe_rho(r)}" for g, r in zip(self.groups, rhos))
            lines.append(f"  {m:<20} {shown}")
        return lines

    def to_json(self) -> dict:
        # null where a map was empty (the correlation is undefined; JSON has no NaN)
        return {"groups": self.groups, "spearman": {m: [None if math.isnan(r) else round(r, 4) for r in v]
                                                    for m, v in self.correlations.items()}}


@dataclass
class SanityResult:
    groups: List[str]
    correlations: Dict[str, torch.Tensor]  # method -> steps×N
    maps: Dict[str, torch.Tensor]  # method -> (steps+1)×N×H×W

    def for_image(self, i: int) -> ImageSanity:
        return ImageSanity(self.groups, {m: [float(v) for v in c[:, i]] for m, c in self.correlations.items()},
                           {m: v[:, i] for m, v in self.maps.items()})


def cascading_randomization(backbone, x: torch.Tensor, methods: Sequence[str], target: torch.Tensor, seed: int = 0,
                            options: dict = None) -> SanityResult:
    """Maps of ``methods`` for images ``x`` on ever more randomised copies of the backbone.

    ``target``: the class index per image (kept fixed while the model is destroyed). ``options``:
    the methods' options (layer, samples, ...).
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
        groups = parameter_groups(model, probe)
        bound = make_methods(methods, shadow, **options)
        history = {m.name: [m.heatmap(m.attribute(x, target)).float().cpu()] for m in bound}
        names = []
        for step, (name, modules) in enumerate(reversed(groups)):
            reinitialize(modules, seed + step)
            names.append(name)
            for m in bound:
                history[m.name].append(m.heatmap(m.attribute(x, target)).float().cpu())
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
    tiles, labels = [], []
    for m in methods:
        info = METHOD_INFO[m.name]
        maps = result.maps[m.name]
        for k in [0] + picks:
            tiles.append(to_pil(overlay(image, maps[k], colormap or info.colormap, 0.75,
                                        1.0 if info.pixel_level else 0.5)))
            if k == 0:
                labels.append(f"{info.title}: original")
            else:
                labels.append(f"to {result.groups[k - 1]}: rho {describe_rho(result.correlations[m.name][k - 1])}")
    title = ("Cascading randomisation (Adebayo et al. 2018), top layers first. rho: Spearman rank "
             "correlation with the original map") if captions else None
    return grid(tiles, labels if captions else [], columns=len(picks) + 1, title=title)
