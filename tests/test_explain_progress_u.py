"""Explain's slow checks say how far they are: the faithfulness metrics count their forward
passes and the sanity check its maps (one per method and randomisation step) as done/total, and
the web page's Explain reports them as a fraction of the stage, so its bar and percentage move
during the metrics and the sanity check instead of standing still for minutes.

Small inputs on the CPU with the embedded Lite0 (the ``lite0`` fixture).
"""

from __future__ import annotations

import math

import torch
from PIL import Image

from cvtools.visualize.metrics import ROAD_FRACTIONS, faithfulness


def _forward_counter(backbone):
    """(a list that grows by one per forward pass of the backbone's network, its hook handle)."""
    calls = []
    handle = backbone.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    return calls, handle


def test_faithfulness_reports_each_forward_pass_of_all_it_runs(lite0):
    n, steps, batch = 2, 32, 8
    x = torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    heat = {m: torch.rand(n, 64, 64, generator=torch.Generator().manual_seed(i)) for i, m in enumerate("ab")}
    maps = len(heat) + 1  # and the random map
    # deletion and insertion: a curve of steps+1 points per image per map, in batches; ROAD: MoRF
    # and LeRF at each fraction per image per map, in batches
    expected = maps * 2 * math.ceil(n * (steps + 1) / batch) + maps * math.ceil(n * 2 * len(ROAD_FRACTIONS) / batch)
    assert expected == 3 * 2 * 9 + 3 * 5
    events = []
    calls, handle = _forward_counter(lite0)
    try:
        faithfulness(lite0, x, heat, torch.tensor([1, 2]), steps=steps, batch_size=batch,
                     progress=lambda done, total: events.append((done, total)))
    finally:
        handle.remove()
    assert len(calls) == expected  # the count is of the passes that ran
    assert events == [(k, expected) for k in range(1, expected + 1)]


def test_faithfulness_without_road_counts_only_its_curves(lite0):
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    events = []
    faithfulness(lite0, x, {"a": torch.rand(1, 64, 64)}, torch.tensor([3]), steps=8, batch_size=4, with_road=False,
                 progress=lambda done, total: events.append((done, total)))
    expected = 2 * 2 * math.ceil(9 / 4)
    assert events == [(k, expected) for k in range(1, expected + 1)]


def test_sanity_check_reports_each_map_of_all_it_computes(lite0):
    from cvtools.visualize.sanity import cascading_randomization

    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    events = []
    result = cascading_randomization(lite0, x, ["gradcam", "saliency"], torch.tensor([5]),
                                     progress=lambda done, total: events.append((done, total)))
    expected = 2 * (len(result.groups) + 1)  # each method's original map, then one per step
    assert len(result.groups) >= 2
    assert events == [(k, expected) for k in range(1, expected + 1)]


def test_the_pages_explain_reports_fractions_of_the_metrics_and_the_sanity_check(tmp_path):
    from cvtools.ui.library import Library

    photo = tmp_path / "photo.png"
    Image.new("RGB", (96, 72), (200, 120, 40)).save(photo)
    events = []
    Library(device="cpu").explain(photo, ["gradcam"], metrics=True, sanity=True,
                                  progress=lambda done, total, stage: events.append((done, total, stage)))
    totals = {total for _, total, _ in events}
    assert len(totals) > 0 and max(totals) == events[-1][1]
    done = [d for d, _, _ in events]
    assert done == sorted(done) and events[-1][0] == events[-1][1], events  # never back, all done at the end
    for stage in ("faithfulness metrics", "sanity check"):
        ours = [d for d, _, s in events if s == stage]
        start = ours[0]
        assert start == int(start), (stage, ours)  # the stage begins at its step
        fractions = [d - start for d in ours]
        assert len(fractions) >= 3, (stage, fractions)  # fractions between the start and the end
        assert all(a < b for a, b in zip(fractions, fractions[1:])), (stage, fractions)
        assert fractions[0] == 0 and fractions[-1] == 1, (stage, fractions)  # k/k is exactly 1
    stages = [s for _, _, s in events]
    assert stages.index("faithfulness metrics") < stages.index("sanity check") < stages.index("done")
