"""Fast neural style transfer (Johnson et al. 2016): the network, stylizing, training, styles.

>>> from cvtools.style import Stylizer, list_styles
>>> Stylizer("starry_night")(image)          # 3×H×W tensor in [0, 1] (or PIL) → 3×H×W tensor
>>> [r.name for r in list_styles()]          # the bundled styles' records

Training: :func:`cvtools.style.train.train_style` (``cvtools train-style``).
Modules: ``network`` (TransformerNet), ``losses`` (Gram/content/TV via backbone taps),
``stylize`` (Stylizer: precision, tiling, strength, colour), ``tiling`` (tiles and blending),
``train`` (``train_style``; its parts: ``train_config``, ``train_data``, ``train_objective``,
``trainer``, ``train_loop``, ``train_checkpoint``, ``train_resume``, ``train_export``), ``records`` (style records, bundled styles).
Names are resolved lazily, so reading style records (``cvtools styles``) never imports torch.
"""

_EXPORTS = {
    "Stylizer": "cvtools.style.stylize",
    "stylize": "cvtools.style.stylize",
    "StyleRecord": "cvtools.style.records",
    "list_styles": "cvtools.style.records:bundled_records",
    "resolve_style": "cvtools.style.records",
    "train_style": "cvtools.style.train",
    "TrainConfig": "cvtools.style.train",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    import importlib

    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'cvtools.style' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr or name)
