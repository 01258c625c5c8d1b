"""CUDA graphs for dream octaves: a whole octave of steps replayed with one launch.

A dream step on a 1080p image is hundreds of small kernels (forward, backward, update), so on a
GPU the time goes into launching them rather than running them. Every step of an octave has the
same shapes, and the step itself has no host syncs or data-dependent Python branches (the
jitter lives in index tensors), so the octave's steps can be captured once and replayed: the
image and the roll indices are static buffers refilled before each replay. Captures are kept
per shape, so a folder of same-sized photos or the frames of an animation pay for capture once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Tuple


class CudaGraphs:
    """Capture with ``torch.cuda.CUDAGraph``; warm-up runs on a side stream, as PyTorch asks."""

    def __init__(self, device):
        self.device = device

    def warmup(self, fn):
        import torch

        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream(self.device).wait_stream(side)

    def capture(self, fn):
        import torch

        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph


class EagerReplay:
    """A stand-in for CUDA graphs that "replays" by running the captured function again: the
    static-buffer plumbing of :class:`CapturedOctave` can then be checked on any device."""

    def warmup(self, fn):
        fn()

    def capture(self, fn):
        return type("Replay", (), {"replay": staticmethod(fn)})()


class CapturedOctave:
    """``steps`` calls of ``step(image, rows, cols, rows_inv, cols_inv)`` on static buffers."""

    WARMUP = 2  # eager runs first: cuDNN autotuning and lazy set-ups stay out of the graph

    def __init__(self, step: Callable, shape: Tuple[int, ...], steps: int, device, backend=None):
        import torch

        h, w = shape[-2:]
        self.image = torch.zeros(shape, device=device)
        self.rows = torch.arange(h, device=device).repeat(steps, 1)
        self.cols = torch.arange(w, device=device).repeat(steps, 1)
        self.rows_inv = self.rows.clone()
        self.cols_inv = self.cols.clone()
        backend = backend or CudaGraphs(device)

        def warmup():
            for _ in range(self.WARMUP):
                step(self.image, self.rows[0], self.cols[0], self.rows_inv[0], self.cols_inv[0])

        def all_steps():
            for k in range(steps):
                step(self.image, self.rows[k], self.cols[k], self.rows_inv[k], self.cols_inv[k])

        backend.warmup(warmup)
        self.graph = backend.capture(all_steps)

    def run(self, image, rows, cols, rows_inv, cols_inv):
        """Replay on ``image`` with these roll indices; returns a new tensor (device-side copies only)."""
        self.image.copy_(image)
        self.rows.copy_(rows)
        self.cols.copy_(cols)
        self.rows_inv.copy_(rows_inv)
        self.cols_inv.copy_(cols_inv)
        self.graph.replay()
        return self.image.clone()


class GraphCache:
    """Captured octaves by (shape, steps), least recently used dropped beyond ``size``
    (each capture holds its own memory pool).

    A shape is captured only when it comes back (``capture_from``-th sighting): capturing costs
    about as much host time as running the octave eagerly three times (two warm-up steps, then
    every step recorded op by op, then the graph instantiated), and pays back only on replays.
    A single photo, or a folder of photos in many sizes, never repeats a shape; a folder of
    same-size photos, an animation or a video repeats it from the second image on.
    """

    def __init__(self, size: int = 8, capture_from: int = 2):
        self.size = size
        self.capture_from = capture_from
        self._items: "OrderedDict[tuple, CapturedOctave]" = OrderedDict()
        self._sightings: "OrderedDict[tuple, int]" = OrderedDict()

    def should_capture(self, key) -> bool:
        """Count one sighting of ``key``; True when it is captured (or to be captured) now."""
        if key in self._items:
            return True
        seen = self._sightings.pop(key, 0) + 1
        self._sightings[key] = seen
        while len(self._sightings) > 64:  # a long mixed folder: forget the oldest shapes
            self._sightings.popitem(last=False)
        return seen >= self.capture_from

    def get(self, key, make: Callable[[], CapturedOctave]) -> CapturedOctave:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        item = make()
        self._items[key] = item
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return item

    def clear(self):
        self._items.clear()
        self._sightings.clear()

    def __len__(self):
        return len(self._items)


def graphs_supported(device) -> bool:
    import torch

    return device.type == "cuda" and torch.cuda.is_available() and hasattr(torch.cuda, "CUDAGraph")
