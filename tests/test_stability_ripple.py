"""The stability term's ripple (train-style's ``temporal_deform``): a smooth random field on top
of the similarity move, for motion like a talking face's. CPU."""

import torch

from cvtools.style.train_objective import stability_pair


def test_without_the_ripple_the_moves_are_unchanged():
    x = torch.rand(4, 3, 48, 64)
    a = stability_pair(x, torch.Generator().manual_seed(5), local_fraction=0.5)
    b = stability_pair(x, torch.Generator().manual_seed(5), local_fraction=0.5, deform=0.0)
    assert torch.equal(a.grid, b.grid) and torch.equal(a.image, b.image)


def test_the_ripple_is_smooth_bounded_and_random():
    x = torch.rand(6, 3, 64, 96)
    h, w = 64, 96
    base = stability_pair(x, torch.Generator().manual_seed(7)).grid
    rippled = stability_pair(x, torch.Generator().manual_seed(7), deform=2.0).grid
    # the same similarity move underneath (the ripple is drawn after it), plus the field, in px
    px = (rippled - base) * torch.tensor([w / 2, h / 2])
    assert px.abs().max() <= 2.0 + 1e-4  # at most the amplitude (fp32 grid units)
    assert px.abs().amax(dim=(1, 2, 3)).min() > 0.3  # every photo ripples
    # smooth: lattice values within ±1 are RIPPLE_CELLS - 1 = 3 intervals apart ((h - 1) / 3 = 21 px
    # at the shorter side); bicubic (a = -0.75) between +1 and -1 neighbours has a slope of at most
    # 1.5 × their difference (2) per interval, so a pixel moves at most 2 · 1.5 · 2 px / 21 px more
    # than its neighbour (0.286; the worst ±1 lattice gives 0.2855)
    bound = 2.0 * 1.5 * 2 / ((h - 1) / 3) + 1e-4
    assert (px[:, :, 1:] - px[:, :, :-1]).abs().max() < bound
    assert (px[:, 1:] - px[:, :-1]).abs().max() < bound
    # not one field for all: photos differ
    assert (px[0] - px[1]).abs().max() > 0.1


def test_a_flat_photo_stays_flat_under_the_ripple():
    x = torch.full((2, 3, 32, 32), 0.4)
    pair = stability_pair(x, torch.Generator().manual_seed(1), deform=3.0)
    assert torch.allclose(pair.image, x, atol=1e-6)
    assert pair.distance(pair.image, x) < 1e-10
