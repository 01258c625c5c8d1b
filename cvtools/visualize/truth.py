"""Known true classes of photos, to explain why a network got one wrong.

Two sources, the usual ones of a labelled evaluation set:

- an ImageFolder layout, ``DIR/<class>/photo.jpg``: the folder a photo is in names its class
  (:meth:`TrueClasses.from_folders`);
- a labels file, CSV ``file,class`` (a header row is allowed; ``file`` is the photo's name or its
  path as given; ``class`` a name or an index) (:meth:`TrueClasses.from_file`).

Names are matched to the network's own class names case-insensitively, with ``_`` as a space
(``golden_retriever`` is ``golden retriever``), and a digit string is an index. A class the
network does not know is that photo's one-line error, naming it and the closest names.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

from cvtools.errors import ImageError, UsageError, did_you_mean, safe_path

#: A labels file larger than this is not one (a CSV of a million photos is ~50 MB).
MAX_LABELS_FILE = 64 << 20


class TrueClasses:
    """The true class index of each photo, looked up by path (None: unknown for that photo)."""

    def __init__(self, categories: Sequence[str], labels: Optional[Dict[str, str]] = None):
        self.categories = list(categories)
        self._by_name = {}
        for i, name in enumerate(self.categories):
            self._by_name.setdefault(_key(name), i)
        self.labels = labels  # None: the photo's folder names its class

    @classmethod
    def from_folders(cls, categories: Sequence[str]) -> "TrueClasses":
        return cls(categories)

    @classmethod
    def from_file(cls, path, categories: Sequence[str]) -> "TrueClasses":
        """A CSV of ``file,class`` rows; a damaged or oversized file is one line naming it."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_LABELS_FILE:
                raise UsageError(f"{safe_path(path)}: a labels file over {MAX_LABELS_FILE >> 20} MB is not one")
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"{safe_path(path)}: cannot read the labels file ({exc})") from None
        labels: Dict[str, str] = {}
        for k, row in enumerate(rows, 1):
            if len(row) < 2:
                raise UsageError(f"{safe_path(path)}: row {k} is not 'file,class'")
            file, label = row[0].strip(), row[1].strip()
            if k == 1 and file.lower() in ("file", "filename", "path", "image"):
                continue  # a header row
            labels[file] = label
        if not labels:
            raise UsageError(f"{safe_path(path)}: no 'file,class' rows")
        return cls(categories, labels)

    def label_of(self, path) -> Optional[str]:
        """The class as written for ``path``: its folder's name, or its row in the labels file."""
        path = Path(path)
        if self.labels is None:
            return path.parent.name or None
        for key in (str(path), os.path.normpath(str(path)), path.name):
            if key in self.labels:
                return self.labels[key]
        return None

    def index_of(self, path) -> Optional[int]:
        """The true class index of ``path``; None when the labels do not name it. An unknown class
        name is an :class:`ImageError` naming the photo."""
        label = self.label_of(path)
        if label is None:
            return None
        if label.isdigit() and int(label) < len(self.categories):
            return int(label)
        index = self._by_name.get(_key(label))
        if index is None:
            hint = did_you_mean(label, self.categories) or "; the classes are the network's (--classes FILE)"
            raise ImageError(path, f"its true class {label!r} is none of the network's{hint}")
        return index


def _key(name: str) -> str:
    return " ".join(str(name).replace("_", " ").lower().split())

