#!/usr/bin/env python3
"""`cvtools bench` with pytorch-grad-cam on a machine that lacks its plotting and decomposition
dependencies (the lent GPU machine: the 64 MiB it may carry leave no room for matplotlib, scipy
and scikit-learn wheels).

pytorch-grad-cam imports matplotlib, scipy.ndimage and sklearn.decomposition at import time for
its drawing helpers, Eigen-CAM's SVD option and ROAD; GradCAM's own path (activations and
gradients by hooks, ``scale_cam_image`` with OpenCV) uses none of them. Where a module is really
missing, a stub stands in for its import only: any use of it raises, so a stub can never change a
measured result silently.

    python3 benchmarks/bench_with_peers.py --only user-gradcam --json > out.json
"""

from __future__ import annotations

import importlib.util
import sys
import types


class _Missing(types.ModuleType):
    def __init__(self, name):
        super().__init__(name)
        import importlib.machinery

        self.__spec__ = importlib.machinery.ModuleSpec(name, None)  # for find_spec() callers
        self.__path__ = []  # a package, so its submodules can be stubbed under it

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unusable(f"{self.__name__}.{name}")


class _Unusable:
    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self._name} is a stub (not installed on this machine)")

    def __getattr__(self, attr):
        return _Unusable(f"{self._name}.{attr}")


def stub_missing(names):
    """Stand-ins for the modules in ``names`` that cannot be imported; returns those stubbed."""
    stubbed = []
    for name in names:
        root = name.split(".")[0]
        if importlib.util.find_spec(root) is not None:
            continue
        for k in range(1, len(name.split(".")) + 1):
            part = ".".join(name.split(".")[:k])
            sys.modules.setdefault(part, _Missing(part))
        stubbed.append(name)
    return stubbed


if __name__ == "__main__":
    stubbed = stub_missing(["matplotlib.pyplot", "matplotlib.lines", "scipy.ndimage", "scipy.sparse.linalg",
                            "sklearn.decomposition"])
    if stubbed:
        print(f"stubbed (import only): {', '.join(stubbed)}", file=sys.stderr)
    from cvtools.cli import console_main

    sys.argv = ["cvtools", "bench", *sys.argv[1:]]
    console_main()
