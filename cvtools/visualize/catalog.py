"""The attribution methods by name, with what --help says about them.

No torch here: the command line lists and validates methods from this table without loading the
engine (``cvtools visualize --help`` stays instant).
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple


class MethodInfo(NamedTuple):
    title: str  # caption
    summary: str  # one line for --help
    uses_layer: bool  # takes --layer (the CAM family)
    gradient_display: bool  # drawn as a signed RGB gradient image instead of a heat overlay
    pixel_level: bool = True  # a map per pixel (sparse, grainy) rather than per region (smooth)

    @property
    def colormap(self) -> str:
        """Default colour map: jet for smooth region maps (the Grad-CAM convention); inferno for
        sparse pixel maps, whose dark low end lets the photo show between the hot pixels."""
        return "inferno" if self.pixel_level else "jet"


METHOD_INFO: Dict[str, MethodInfo] = {
    "gradcam": MethodInfo("Grad-CAM", "layer activations weighted by their mean gradient (Selvaraju et al. 2017); "
                          "fast, coarse", True, False, False),
    "gradcam++": MethodInfo("Grad-CAM++", "Grad-CAM with higher-order weights, better with several objects "
                            "(Chattopadhay et al. 2018)", True, False, False),
    "layercam": MethodInfo("LayerCAM", "each position weighted by its own positive gradient (Jiang et al. 2021); "
                           "finer on earlier layers", True, False, False),
    "hirescam": MethodInfo("HiResCAM", "activations times their gradient at each position, summed over channels "
                           "(Draelos & Carin 2020); as fast as Grad-CAM", True, False, False),
    "xgradcam": MethodInfo("XGrad-CAM", "Grad-CAM with activation-weighted gradient averages (Fu et al. 2020); "
                           "as fast as Grad-CAM", True, False, False),
    "eigencam": MethodInfo("Eigen-CAM", "first principal component of the layer's activations (Muhammad & Yeasin "
                           "2020); no gradients, the same map for every class", True, False, False),
    "scorecam": MethodInfo("Score-CAM", "channels weighted by the class score of the image masked by each "
                           "(Wang et al. 2020); no gradients, a forward pass per channel", True, False, False),
    "ablationcam": MethodInfo("Ablation-CAM", "channels weighted by the score drop when each is zeroed (Desai & "
                              "Ramaswamy 2020); no gradients, re-runs the layers above once per channel",
                              True, False, False),
    "saliency": MethodInfo("Saliency", "gradient of the class score w.r.t. the pixels (Simonyan et al. 2014); "
                           "fast, noisy", False, False),
    "smoothgrad": MethodInfo("SmoothGrad", "saliency averaged over noisy copies (Smilkov et al. 2017); clean, "
                             "--samples times the cost", False, False),
    "integrated-gradients": MethodInfo("Integrated Gradients", "gradients integrated from a mean-colour image "
                                       "(Sundararajan et al. 2017); --steps times the cost", False, False),
    "input-x-gradient": MethodInfo("Input x Gradient", "pixels times their gradient (Shrikumar et al. 2016); fast",
                                   False, False),
    "occlusion": MethodInfo("Occlusion", "score drop when a grey patch hides each region (Zeiler & Fergus 2014); "
                            "no gradients, ~200 forward passes", False, False, False),
    "guided-backprop": MethodInfo("Guided Backprop", "gradients with negative signals stopped at every ReLU "
                                  "(Springenberg et al. 2015); sharp edges, not class-specific", False, True),
    "guided-gradcam": MethodInfo("Guided Grad-CAM", "guided backprop masked by Grad-CAM (Selvaraju et al. 2017); "
                                 "sharp and class-specific", True, True),
    "attention-rollout": MethodInfo("Attention Rollout", "vision transformers: where the class token draws from "
                                    "through every layer's attention (Abnar & Zuidema 2020); the same map for "
                                    "every class", False, False, False),
}

#: Methods that need a kind of network (transformers) and are not in ``all``.
TRANSFORMER_ONLY = ("attention-rollout",)

ALIASES = {
    "ig": "integrated-gradients", "integrated_gradients": "integrated-gradients", "gradcampp": "gradcam++",
    "gradcam-plus-plus": "gradcam++", "grad-cam": "gradcam", "grad-cam++": "gradcam++",
    "guided_backprop": "guided-backprop", "guided_gradcam": "guided-gradcam", "input_x_gradient": "input-x-gradient",
    "ixg": "input-x-gradient", "vanilla": "saliency", "gradient": "saliency",
    "hires-cam": "hirescam", "xgrad-cam": "xgradcam", "x-gradcam": "xgradcam", "eigen-cam": "eigencam",
    "score-cam": "scorecam", "ablation-cam": "ablationcam", "rollout": "attention-rollout",
    "attention_rollout": "attention-rollout",
}

#: Which methods ``all`` means, in panel order (every method that runs on any network).
ALL = [m for m in METHOD_INFO if m not in TRANSFORMER_ONLY]


def method_name(name: str) -> str:
    """The canonical name of a method (aliases accepted), or a UsageError listing them."""
    from cvtools.errors import UsageError

    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in METHOD_INFO:
        raise UsageError(f"unknown method {name!r}; choose from {', '.join(METHOD_INFO)}")
    return key


def parse_methods(*specs: str) -> List[str]:
    """Comma-separated method lists (``all`` for every method) -> canonical names, in order, once each."""
    names: List[str] = []
    for spec in specs:
        for part in (spec or "").split(","):
            if not part.strip():
                continue
            for name in (ALL if part.strip().lower() == "all" else [method_name(part)]):
                if name not in names:
                    names.append(name)
    return names


#: What joins several methods' names in an output's name (``photo_gradcam_gradcampp.jpg``, the web
#: page's ``photo_gradcam_gradcam++.png``): '_' is in no method name, while '+' (gradcam++) and
#: '-' (integrated-gradients) are, so a name joined with either read two ways; and it is safe in
#: file names on every system. tests/test_cli_qa_t.py checks each method name against it.
METHOD_SEPARATOR = "_"


def file_slug(name: str) -> str:
    """A method name as it appears in output file names (no '+')."""
    return name.replace("++", "pp")


def only_from_all(*specs: str) -> List[str]:
    """The methods that ``all`` in ``specs`` brought in and no spec named: those a network they
    cannot run on leaves out with a note (a method named is an error there)."""
    parts = [p.strip().lower() for spec in specs for p in (spec or "").split(",") if p.strip()]
    if "all" not in parts:
        return []
    named = {method_name(p) for p in parts if p != "all"}
    return [m for m in ALL if m not in named]


def class_name_hint(word: str, names) -> str:
    """``"; did you mean 'dog'?"`` for a mistyped class name, else ``""``. Looser than the usual
    suggestion (difflib's 0.6, not 0.7): class names are short, and one swapped pair of letters
    in a three-letter name ('dgo') already scores 0.67."""
    import difflib

    key = str(word).strip().lower().replace("_", " ")
    lowered = {}
    for name in names:
        lowered.setdefault(str(name).lower(), str(name))
    close = difflib.get_close_matches(key, list(lowered), n=3, cutoff=0.6)
    return "; did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?" if close else ""


def with_class_hint(exc: Exception, word, names) -> Exception:
    """The "no class named ..." error of a class target with :func:`class_name_hint` added where it
    had no suggestion of its own; ``exc`` itself otherwise (an ambiguous name, an index)."""
    text = str(exc)
    if not isinstance(word, str) or not text.startswith("no ") or "did you mean" in text:
        return exc
    hint = class_name_hint(word, names)
    if not hint:
        return exc
    return type(exc)(text.split(";")[0] + hint, param=getattr(exc, "params", None) or None)
