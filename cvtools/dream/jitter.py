"""Random rolls (jitter) as gather indices.

``torch.roll`` takes its shift as a Python int, which a CUDA graph would freeze at capture time.
Expressing the roll as a gather with index tensors lets the shifts live in device buffers that
are refilled before each replay, so one captured octave serves every step and every image. The
shifts are drawn up front for a whole octave from a local generator: no host sync, no global
RNG state touched, the same seed gives the same dream.
"""

from __future__ import annotations


def roll_indices(n: int, shifts):
    """Gather indices for rolling a length-``n`` axis by each of ``shifts`` (a 1-D int tensor).

    Returns (forward, inverse), each len(shifts)×n: ``x.index_select(axis, forward[k])`` equals
    ``torch.roll(x, int(shifts[k]), axis)`` and ``inverse[k]`` undoes it.
    """
    import torch

    # Built where the shifts live (the device), so no index table crosses the bus per step.
    base = torch.arange(n, device=shifts.device).unsqueeze(0)
    s = shifts.reshape(-1, 1).long()
    return (base - s) % n, (base + s) % n


def roll2d(x, rows, cols):
    """Roll the last two axes of ``x`` (N×C×H×W) with gather indices from :func:`roll_indices`."""
    return x[:, :, rows.unsqueeze(1), cols.unsqueeze(0)]


def draw_shifts(generator, steps: int, max_shift: int):
    """``steps``×2 integer shifts uniform in [-max_shift, max_shift] (rows, columns)."""
    import torch

    if max_shift <= 0:
        return torch.zeros(steps, 2, dtype=torch.long)
    return torch.randint(-max_shift, max_shift + 1, (steps, 2), generator=generator)
