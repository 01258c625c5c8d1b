"""ImageNet-1k class names.

The list is torchvision's (``ResNet50_Weights.IMAGENET1K_V2.meta["categories"]``, BSD licence),
stored in ``cvtools/data/imagenet_classes.txt`` so that the embedded backbone never imports
torchvision: its import pulls in ``torch._dynamo`` and costs seconds on a cold start.
"""

from functools import lru_cache
from pathlib import Path

_CLASSES_FILE = Path(__file__).resolve().parents[1] / "data" / "imagenet_classes.txt"


@lru_cache(maxsize=1)
def imagenet_categories():
    names = _CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    assert len(names) == 1000, f"{_CLASSES_FILE} is damaged: {len(names)} class names, expected 1000"
    return names


def parse_class_target(text: str, names=None):
    """A command-line class target (``top1``, ``281``, ``tabby``) -> None (each image's top
    class) or a class index among ``names`` (default: ImageNet's); imports no torch, so a
    mistyped class answers at once."""
    if str(text).strip().lower() in ("", "top1", "top", "auto"):
        return None
    return class_index(str(text), names)


def class_index(target: str, names=None) -> int:
    """A class index from an integer string or a (case-insensitive, unique-part) class name among
    ``names`` (default: the ImageNet classes)."""
    from cvtools.errors import UsageError

    cats = imagenet_categories() if names is None else list(names)
    which = "ImageNet class" if names is None else "class"
    if target.isdigit():
        idx = int(target)
        if not 0 <= idx < len(cats):
            raise UsageError(f"class index {idx} out of range 0..{len(cats) - 1}")
        return idx
    key = target.strip().lower().replace("_", " ")
    exact = [i for i, c in enumerate(cats) if c.lower() == key]
    if exact:
        return exact[0]
    if key.startswith("-") and key[1:].isdigit():  # not Python's from-the-end: a typo more likely
        raise UsageError(f"{key} is not a class index: class indices run 0..{len(cats) - 1}, and a negative "
                         "one does not count from the end")
    partial = [i for i, c in enumerate(cats) if key in c.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        from cvtools.errors import did_you_mean

        hint = did_you_mean(key, cats) or "; `cvtools classify PHOTO` shows the names a network gives"
        raise UsageError(f"no {which} named {target!r}{hint}")
    names = ", ".join(f"{cats[i]} ({i})" for i in partial[:8])
    raise UsageError(f"class name {target!r} is ambiguous: {names}{', ...' if len(partial) > 8 else ''}")
