"""An explanation scorecard: every method × every trust measure, over a folder of images.

>>> card = Scorecard(["gradcam", "saliency"])
>>> for x, names in batches:                                # N×3×H×W in [0, 1] on the device
...     card.extend(score_batch(backbone, ["gradcam", "saliency"], x, names, sanity=True))
>>> print(card.table())

Measures (each image's own top class, or a fixed ``target``):

- deletion / insertion AUC (Petsiuk et al. 2018; :func:`cvtools.visualize.metrics.deletion_insertion`);
- ROAD MoRF / LeRF (Rong et al. 2022; :func:`cvtools.visualize.metrics.road`): the mean class
  probability with the most / least relevant 10-90 % of the pixels imputed;
- sanity ρ (Adebayo et al. 2018; :mod:`cvtools.visualize.sanity`): the Spearman correlation of
  the map with itself as the layers are re-initialised from the top, averaged over the cascade:
  a map that explains the model falls towards 0, one that shows the image stays near 1;
- seconds per image for the map.

The ``random`` row is a smooth random map (:func:`cvtools.visualize.metrics.random_blobs`) under the
same measures: a method should beat it. Its sanity ρ is 1 by construction (it ignores the model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

from cvtools.device import autotuned

#: Column -> (heading, which way is better).
COLUMNS = {
    "deletion": ("deletion AUC", "lower"),
    "insertion": ("insertion AUC", "higher"),
    "road_morf": ("ROAD MoRF", "lower"),
    "road_lerf": ("ROAD LeRF", "higher"),
    "sanity": ("sanity rho", "lower"),
    "seconds": ("s/image", "lower"),
}


@dataclass
class ImageScores:
    """One image's measures: ``values[method][column]`` (the ``random`` row included)."""

    name: str
    target: int
    label: str
    probability: float
    values: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"image": self.name, "target": self.target, "label": self.label,
                "probability": round(self.probability, 6),
                "scores": {m: {k: round(v, 6) for k, v in row.items()} for m, row in self.values.items()}}


class Scorecard:
    """Per-image scores of several methods, and their means as a table."""

    def __init__(self, methods: Sequence[str], settings: Optional[dict] = None):
        self.methods = list(methods)
        self.images: List[ImageScores] = []
        self.settings = dict(settings or {})

    def extend(self, rows: Sequence[ImageScores]) -> None:
        self.images.extend(rows)

    def rows(self) -> List[str]:
        return self.methods + ["random"]

    def means(self) -> Dict[str, Dict[str, Optional[float]]]:
        """method -> column -> (mean over the images that have it, count)."""
        out = {}
        for m in self.rows():
            out[m] = {}
            for c in COLUMNS:
                vals = [im.values[m][c] for im in self.images if c in im.values.get(m, {})]
                out[m][c] = (sum(vals) / len(vals), len(vals)) if vals else (None, 0)
        return out

    def table(self, markdown: bool = False) -> str:
        """Methods × measures (means over the images), the best method in each column marked *."""
        means = self.means()
        cols = [c for c in COLUMNS if any(means[m][c][1] for m in self.rows())]
        best = {}
        for c in cols:
            scored = [(means[m][c][0], m) for m in self.methods if means[m][c][0] is not None]
            if scored and c != "seconds":
                best[c] = (min if COLUMNS[c][1] == "lower" else max)(scored)[1]
        heads = ["method"] + [f"{COLUMNS[c][0]} {'↓' if COLUMNS[c][1] == 'lower' else '↑'}" for c in cols]
        lines = []
        for m in self.rows():
            cells = [m]
            for c in cols:
                v = means[m][c][0]
                text = "—" if v is None else (f"{v:.2f}" if c == "seconds" else f"{v:.3f}")
                cells.append(text + ("*" if best.get(c) == m else ""))
            lines.append(cells)
        counts = {c: max(means[m][c][1] for m in self.rows()) for c in cols}
        if markdown:
            out = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["---:"] * len(cols)) + "|"]
            out += ["| " + " | ".join(cells) + " |" for cells in lines]
        else:
            widths = [max(len(r[i]) for r in [heads] + lines) for i in range(len(heads))]
            fmt = lambda cells: "  ".join(s.ljust(w) if i == 0 else s.rjust(w)  # noqa: E731
                                          for i, (s, w) in enumerate(zip(cells, widths)))
            out = [fmt(heads), "-" * len(fmt(heads))] + [fmt(cells) for cells in lines]
        n = len(self.images)
        note = f"means over {n} image{'s' if n != 1 else ''}"
        if "sanity" in counts and counts["sanity"] < n:
            note += f" (sanity rho over the first {counts['sanity']})"
        note += "; * best method per column; random: a smooth random map (its sanity rho is 1 by construction)"
        return "\n".join(out + [note])

    def to_json(self) -> dict:
        means = self.means()
        return {"methods": self.methods, "settings": self.settings, "images": len(self.images),
                "means": {m: {c: (None if v is None else round(v, 6)) for c, (v, _) in row.items()}
                          for m, row in means.items()},
                "counts": {m: {c: k for c, (_, k) in row.items()} for m, row in means.items()},
                "per_image": [im.to_json() for im in self.images]}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@autotuned
def score_batch(backbone, methods: Sequence[str], x: torch.Tensor, names: Sequence[str], target=None,
                layer: Optional[str] = None, sanity: bool = True, road: bool = True, seed: int = 0,
                batch_size: int = 32, curve_steps: int = 32, on_stage=None, **options) -> List[ImageScores]:
    """Every measure of every method for a batch of images (N×3×H×W in [0, 1], one size).

    ``options`` configure the methods (``samples``, ``steps``, ``window``, ``internal_batch_size``);
    ``batch_size`` is the metrics' images per forward pass, ``curve_steps`` the deletion and
    insertion curves' points. ``on_stage(message)``: told as each method's map, the metrics and
    the sanity check start and end (:func:`~cvtools.visualize.explain.stage`).
    """
    from cvtools.visualize.explain import stage
    from cvtools.visualize.methods import make_methods
    from cvtools.visualize.metrics import faithfulness
    from cvtools.visualize.model import check_image_batch, predict

    x = check_image_batch(x, backbone)
    n, _, h, w = x.shape
    idx, prob, _ = predict(backbone, x, target)
    rows = [ImageScores(str(nm), int(i), backbone.categories[int(i)], float(p))
            for nm, i, p in zip(names, idx.cpu(), prob.cpu())]
    heat = {}
    for name in methods:
        (method,) = make_methods([name], backbone, layer=layer, **options)
        _sync(x.device)
        with stage(on_stage, f"{name} maps ({n} image{'s' if n > 1 else ''})"):
            start = time.perf_counter()
            heat[name] = method.heatmap(method.attribute(x, idx)).float()
            _sync(x.device)
            per_image = (time.perf_counter() - start) / n
        for r in rows:
            r.values[name] = {"seconds": per_image}
    with stage(on_stage, f"metrics of {len(heat)} method{'s' if len(heat) > 1 else ''} and a random map"):
        scores = faithfulness(backbone, x, heat, idx, steps=curve_steps, seed=seed, batch_size=batch_size,
                              with_road=road)
    for name, per_image in scores.items():
        for r, s in zip(rows, per_image):
            r.values[name].update(deletion=s.deletion, insertion=s.insertion)
            r.values.setdefault("random", {}).update(deletion=s.random_deletion, insertion=s.random_insertion)
            if s.road_morf is not None:
                r.values[name].update(road_morf=s.road_morf, road_lerf=s.road_lerf)
                r.values["random"].update(road_morf=s.random_road_morf, road_lerf=s.random_road_lerf)
    if sanity:
        from cvtools.visualize.sanity import cascading_randomization

        with stage(on_stage, f"sanity check of {len(methods)} method{'s' if len(methods) > 1 else ''}"):
            checks = cascading_randomization(backbone, x, list(methods), idx, seed=seed,
                                             options=dict(options, layer=layer))
        for name, rho in checks.correlations.items():
            # rho is NaN where a map is constant (an empty CAM has no ranking): such steps are left
            # out of the mean, and an image whose original map is empty has no sanity value.
            mean = rho.nanmean(dim=0)
            for r, v in zip(rows, mean):
                if torch.isfinite(v):
                    r.values[name]["sanity"] = float(v)
        for r in rows:
            r.values["random"]["sanity"] = 1.0
    return rows
