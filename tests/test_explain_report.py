"""Explainer.run: the explanation plus its trust checks as a library call (what `cvtools
visualize METHOD --metrics --sanity --json` prints), and the precision policy."""

import json

import pytest
import torch
from conftest import SAMPLES
from PIL import Image

from cvtools.visualize.explain import Explainer, analysis_tensor, needs_fp32, precision_for


@pytest.fixture(scope="module")
def two_photos():
    images = [Image.open(SAMPLES / f"{name}.jpg").convert("RGB").resize((80, 64)) for name in ("chelsea", "coffee")]
    return torch.stack([analysis_tensor(im, 64) for im in images])


def test_precision_policy():
    assert precision_for(["gradcam", "layercam"]) == "auto"  # late-layer gradients: fp16 is fine on a GPU
    for methods in (["saliency"], ["gradcam", "integrated-gradients"], ["ablationcam"]):
        assert needs_fp32(methods) and precision_for(methods) == "fp32", methods
    assert precision_for(["saliency"], "bf16") == "bf16"  # asked for explicitly: kept


@pytest.mark.slow
def test_run_adds_metrics_and_sanity_to_what_explain_gives(lite0, two_photos):
    from cvtools.visualize.metrics import faithfulness

    explainer = Explainer(lite0, ["gradcam", "integrated-gradients"], steps=8, seed=3, internal_batch_size=16)
    plain = explainer.explain(two_photos)
    reports = explainer.run(two_photos, metrics=True, sanity=True)
    assert len(reports) == 2
    for r, e in zip(reports, plain):  # the same explanation (deterministic on the CPU in fp32)
        assert (r.explanation.target, r.explanation.label) == (e.target, e.label)
        for m in ("gradcam", "integrated-gradients"):
            assert torch.equal(r.explanation.heatmaps[m], e.heatmaps[m]), m
    # the metrics are faithfulness() with the explainer's seed and internal batch size
    heat = {m: torch.stack([e.heatmaps[m] for e in plain]) for m in ("gradcam", "integrated-gradients")}
    direct = faithfulness(lite0, two_photos, heat, torch.tensor([e.target for e in plain]), seed=3, batch_size=16)
    for i, r in enumerate(reports):
        assert set(r.metrics) == {"gradcam", "integrated-gradients"}
        assert r.metrics["gradcam"].to_json() == direct["gradcam"][i].to_json()
        assert set(r.sanity.correlations) == {"gradcam", "integrated-gradients"}
        assert len(r.sanity.groups) >= 2
    # what --json prints after path and outputs: valid JSON, the fields in this order
    shaped = reports[0].to_json()
    assert list(shaped) == ["target", "label", "probability", "diagnostics", "metrics", "sanity"]
    assert json.loads(json.dumps(shaped))["diagnostics"]["integrated-gradients"]["steps"] == 8
    lines = reports[0].details()
    assert lines[0].startswith("integrated-gradients") and any(line.startswith("sanity:") for line in lines)
    assert reports[0].headline.startswith(f"{plain[0].label} ({plain[0].target}) ")


def test_run_without_checks_is_explain(lite0, two_photos):
    reports = Explainer(lite0, ["gradcam"]).run(two_photos)
    assert all(r.metrics is None and r.sanity is None for r in reports)
    assert list(reports[1].to_json()) == ["target", "label", "probability"]
    assert reports[1].details() == []
