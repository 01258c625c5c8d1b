"""``cvtools stylize --engine onnxruntime``: the Stylizer with its forward in onnxruntime (CPU).

>>> from cvtools.style.onnxruntime_engine import OnnxRuntimeStylizer
>>> OnnxRuntimeStylizer("starry_night")(image)      # as Stylizer: 3×H×W (or PIL) in, 3×H×W out

The style is exported once (checked against PyTorch) and kept in the cache
(:func:`cvtools.export.cached_style_export`). Needs ``pip install 'cvtools[onnx]'``.
"""

from __future__ import annotations

from typing import Callable, Optional

from cvtools.export import (
    _run,
    cached_style_export,
    check_onnxruntime_options,
    cpu_session,
    require_exporter,
    require_onnxruntime,
)
from cvtools.style.stylize import Stylizer


class OnnxRuntimeStylizer(Stylizer):
    """A :class:`~cvtools.style.stylize.Stylizer` whose whole-image forward runs in onnxruntime.

    Everything else is the Stylizer's: strength, colour, tiny images, and tiling (tiles share
    instance-norm statistics through the PyTorch network, which an exported graph cannot do).
    device: auto or cpu. precision: auto or fp32. threads: onnxruntime's intra-op threads
    (None: its default, one per physical core).
    """

    engine = "onnxruntime"

    def __init__(self, style="mona", device: str = "auto", precision: str = "auto", compile: bool = False,
                 threads: Optional[int] = None, on_note: Optional[Callable[[str], None]] = None):
        check_onnxruntime_options(device, precision, compile)
        require_onnxruntime()
        require_exporter()
        super().__init__(style, device="cpu", precision="fp32", on_note=on_note)
        self.onnx_path = cached_style_export(self.record, "fp32", on_note=on_note)
        self.session = cpu_session(self.onnx_path, threads)

    def stylize_tensor(self, images):
        """The exported network on a batch N×3×H×W in [0, 1] → float32 on the CPU."""
        if images.dim() == 3:
            images = images.unsqueeze(0)
        return _run(self.session, images)
