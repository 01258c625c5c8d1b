"""The attribution methods by command-line name: one explicit table, built here and nowhere else.

A new method is a class (``name`` set, an entry in ``catalog.METHOD_INFO``) added to the tuple
below; nothing registers itself on import. :func:`make_method` builds one method and refuses
options it does not take; :func:`make_methods` builds a panel from one shared set of options
(the command line's), each option going to the methods that take it.
"""

from __future__ import annotations

import inspect
from typing import Dict, FrozenSet, List, Sequence, Type

from cvtools.errors import UsageError
from cvtools.visualize.attribution import (
    Attribution,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    Occlusion,
    Saliency,
    SmoothGrad,
)
from cvtools.visualize.cams import CAMS
from cvtools.visualize.catalog import METHOD_INFO, method_name
from cvtools.visualize.rollout import AttentionRollout

METHODS: Dict[str, Type[Attribution]] = {
    cls.name: cls for cls in (Saliency, SmoothGrad, IntegratedGradients, GuidedBackprop, InputXGradient, Occlusion,
                              *CAMS, AttentionRollout)
}

assert set(METHODS) <= set(METHOD_INFO)


def method_options(cls: Type[Attribution]) -> FrozenSet[str]:
    """The keyword options a method class takes (its ``__init__`` after ``backbone``)."""
    params = list(inspect.signature(cls.__init__).parameters)[2:]  # self, backbone
    return frozenset(params)


def make_method(name: str, backbone, **options) -> Attribution:
    """Build method ``name`` (aliases accepted) for ``backbone``. An option set to None keeps the
    method's default; any other option the method does not take is a UsageError."""
    cls = METHODS[method_name(name)]
    given = {k: v for k, v in options.items() if v is not None}
    takes = method_options(cls)
    unknown = sorted(set(given) - takes)
    if unknown:
        raise UsageError(f"{cls.name} takes no option {unknown[0]!r} (it takes: {', '.join(sorted(takes))})",
                         param=unknown[0])
    return cls(backbone, **given)


def make_methods(names: Sequence[str], backbone, **options) -> List[Attribution]:
    """Build a panel of methods from one set of options (e.g. the command line's ``--layer``,
    ``--samples``, ``--internal-batch-size``): each method gets the options it takes. An option
    that no method at all takes is a UsageError (a typo, not an option for another method)."""
    known = frozenset().union(*(method_options(cls) for cls in METHODS.values()))
    unknown = sorted(k for k, v in options.items() if v is not None and k not in known)
    if unknown:
        raise UsageError(f"no attribution method takes the option {unknown[0]!r} "
                         f"(asked of {', '.join(method_name(n) for n in names)})", param=unknown[0])
    built = []
    for name in names:
        takes = method_options(METHODS[method_name(name)])
        built.append(make_method(name, backbone, **{k: v for k, v in options.items() if k in takes}))
    return built


def unusable_methods(names: Sequence[str], backbone, layer=None) -> Dict[str, str]:
    """method -> why it cannot run on ``backbone`` at all (not a mistake in its options): the
    layer methods on a network whose layers cannot be tapped (a TorchScript file), guided
    backprop (and Guided Grad-CAM) on one without ReLUs the guided rule reaches."""
    from cvtools.visualize.attribution import guided_problem

    reasons = {}
    no_layers = not backbone.layer_paths or (layer is None and not backbone.defaults.cam)
    for name in names:
        info = METHOD_INFO[name]
        if info.uses_layer and no_layers:
            reasons[name] = f"{backbone.name}: {getattr(backbone, 'layers_note', '') or 'it has no layer maps'}"
        elif name in ("guided-backprop", "guided-gradcam"):
            problem = guided_problem(backbone)
            if problem:
                reasons[name] = problem
    return reasons


def usable_methods(names: Sequence[str], backbone, optional: Sequence[str] = (), layer=None, on_note=None) -> List[str]:
    """``names`` without the methods that cannot run on ``backbone`` (:func:`unusable_methods`).
    One of ``optional`` (what ``all`` brought in) is left out, all of them with one note through
    ``on_note``; a method asked for by name is a UsageError saying why."""
    names = [method_name(n) for n in names]
    optional = {method_name(n) for n in optional}
    reasons = unusable_methods(names, backbone, layer)
    named = [n for n in names if n in reasons and n not in optional]
    if named:
        raise UsageError(reasons[named[0]], param="methods")
    if reasons and on_note is not None:
        by_reason: Dict[str, List[str]] = {}
        for name, why in reasons.items():
            by_reason.setdefault(why, []).append(name)
        on_note("skipped " + "; ".join(f"{', '.join(ms)} ({why})" for why, ms in by_reason.items()))
    return [n for n in names if n not in reasons]
