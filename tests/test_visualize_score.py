"""ROAD (noisy linear imputation against a dense float64 solve, which pixels go, batch
independence, a map beating its inverse on real photos) and the scorecard (its arithmetic, a
small run, the CLI)."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from PIL import Image

from cvtools.visualize import metrics
from cvtools.visualize.metrics import linear_impute, road
from cvtools.visualize.score import ImageScores, Scorecard, score_batch


def dense_imputation(x, keep):
    """Rong et al.'s system written out: each missing pixel minus the weighted mean of its in-image
    neighbours (1/6 sides, 1/12 corners) is 0; solved densely in float64, one channel at a time."""
    c, h, w = x.shape
    weights = {(dy, dx): (1 / 6 if dy == 0 or dx == 0 else 1 / 12)
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)}
    missing = [(y, xx) for y in range(h) for xx in range(w) if not keep[y, xx]]
    index = {p: k for k, p in enumerate(missing)}
    out = x.clone().double()
    for ch in range(c):
        a = torch.zeros(len(missing), len(missing), dtype=torch.float64)
        b = torch.zeros(len(missing), dtype=torch.float64)
        for k, (y, xx) in enumerate(missing):
            for (dy, dx), wt in weights.items():
                q = (y + dy, xx + dx)
                if not (0 <= q[0] < h and 0 <= q[1] < w):
                    continue
                a[k, k] += wt
                if q in index:
                    a[k, index[q]] -= wt
                else:
                    b[k] += wt * float(x[ch, q[0], q[1]])
        solution = torch.linalg.solve(a, b)
        for k, (y, xx) in enumerate(missing):
            out[ch, y, xx] = solution[k]
    return out


def test_linear_imputation_solves_roads_system():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 13, 17, generator=gen, dtype=torch.float64)
    keep = torch.rand(2, 1, 13, 17, generator=gen) > 0.6  # 60 % missing, in clumps and specks
    keep[1, :, 3:11, 4:15] = False  # and a large hole
    ours = linear_impute(x, keep, tol=1e-13, max_iterations=2000)
    for i in range(2):
        ref = dense_imputation(x[i], keep[i, 0])
        # float64 CG stopped at a relative residual of 1e-13, on a system with a condition number
        # of a few hundred at this size: the error is far below 1e-9.
        assert (ours[i] - ref).abs().max().item() < 1e-9
    assert torch.equal(ours[keep.expand_as(x)], x[keep.expand_as(x)])  # known pixels untouched


def test_linear_imputation_default_tolerance_in_float32():
    """At the default tolerance (relative residual 1e-4) and in float32, imputed values stay within
    1e-3 of the exact ones on this small problem (measured at 224 px: mean error 2e-5 to 8e-4,
    below ROAD's noise of 0.01 normalised units = 2e-3 here)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 24, 20, generator=gen)
    keep = torch.ones(1, 1, 24, 20, dtype=torch.bool)
    keep[:, :, 2:20, 3:17] = False
    ours = linear_impute(x, keep)
    ref = dense_imputation(x[0].double(), keep[0, 0])
    assert (ours[0] - ref).abs().max().item() < 1e-3


def test_road_removes_the_most_and_least_relevant_pixels(lite0, monkeypatch):
    """MoRF at fraction f imputes exactly the top f of the pixels by the map, LeRF the bottom f."""
    seen = []
    real = metrics.linear_impute

    def spy(x, keep, *args, **kwargs):
        seen.append(keep.clone())
        return real(x, keep, *args, **kwargs)

    monkeypatch.setattr(metrics, "linear_impute", spy)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    heat = torch.arange(32 * 32, dtype=torch.float32).view(1, 32, 32) / 1024  # distinct values
    out = road(lite0, x, {"ramp": heat}, torch.tensor([5]), fractions=(0.25, 0.5), batch_size=64)
    keep = seen[0][:, 0].flatten(1)  # items: MoRF 0.25, MoRF 0.5, LeRF 0.25, LeRF 0.5
    order = torch.arange(1024)
    assert torch.equal(~keep[0], order >= 768) and torch.equal(~keep[1], order >= 512)
    assert torch.equal(~keep[2], order < 256) and torch.equal(~keep[3], order < 512)
    (morf, lerf), = out["ramp"]
    assert 0 <= morf <= 1 and 0 <= lerf <= 1


def test_road_is_batch_independent_and_has_a_random_row(lite0):
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    heat = torch.rand(2, 32, 40, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([1, 7])
    rnd = torch.rand(1, 32, 40, generator=torch.Generator().manual_seed(5))
    both = road(lite0, x, {"m": heat}, target, random_map=rnd, fractions=(0.3, 0.7))
    alone = road(lite0, x[1:], {"m": heat[1:]}, target[1:], random_map=rnd, fractions=(0.3, 0.7))
    assert set(both) == {"m", "random"} and len(both["m"]) == 2
    # Same pixels, same noise; only fp32 rounding of batch-size dependent kernels may differ.
    assert np.allclose(both["m"][1], alone["m"][0], atol=1e-5)
    assert np.allclose(both["random"][1], alone["random"][0], atol=1e-5)


@pytest.mark.slow
def test_road_ranks_gradcam_above_its_inverse_on_natural_images(lite0, shared):
    from cvtools.io.decode import load_image, pil_to_tensor
    from cvtools.visualize.cam import gradcam

    files = sorted((shared / "data" / "imagenet50").glob("*.jpg"))[:6]
    if not files:
        pytest.skip("no imagenet50 images")
    x = torch.stack([pil_to_tensor(load_image(f).rgb.resize((96, 96), Image.BICUBIC)) for f in files])
    target = lite0(x).argmax(1)
    heat = gradcam(lite0, x, target)
    out = road(lite0, x, {"map": heat, "inverse": 1 - heat}, target, fractions=(0.2, 0.5, 0.8))
    mean = {k: np.mean(v, axis=0) for k, v in out.items()}
    assert mean["map"][0] < mean["inverse"][0] and mean["map"][1] > mean["inverse"][1]


# ----------------------------------------------------------------------------- the scorecard


def card_of(values):
    card = Scorecard(["a", "b"])
    card.extend([ImageScores(f"im{i}", 0, "x", 0.5, v) for i, v in enumerate(values)])
    return card


def test_scorecard_means_best_marks_and_json():
    card = card_of([
        {"a": {"deletion": 0.1, "insertion": 0.6, "sanity": 0.2}, "b": {"deletion": 0.3, "insertion": 0.8},
         "random": {"deletion": 0.4, "insertion": 0.5, "sanity": 1.0}},
        {"a": {"deletion": 0.3, "insertion": 0.4}, "b": {"deletion": 0.1, "insertion": 0.9},
         "random": {"deletion": 0.2, "insertion": 0.3}},
    ])
    means = card.means()
    assert means["a"]["deletion"] == (pytest.approx(0.2), 2) and means["b"]["insertion"] == (pytest.approx(0.85), 2)
    assert means["a"]["sanity"] == (pytest.approx(0.2), 1) and means["b"]["sanity"] == (None, 0)
    assert means["a"]["road_morf"] == (None, 0)
    lines = card.table().splitlines()
    assert lines[0].split()[:3] == ["method", "deletion", "AUC"] and "ROAD" not in lines[0]
    row_a = lines[2].split()
    row_b = lines[3].split()
    assert row_a[0] == "a" and row_a[1] == "0.200*" and row_a[2] == "0.500" and row_a[3] == "0.200*"
    assert row_b[1] == "0.200" and row_b[2] == "0.850*" and row_b[3] == "—"
    assert lines[4].startswith("random") and "sanity rho over the first 1" in lines[-1]
    md = card.table(markdown=True).splitlines()
    assert md[0].startswith("| method |") and md[1].startswith("|---|---:")
    data = json.loads(json.dumps(card.to_json()))
    assert data["means"]["b"]["insertion"] == pytest.approx(0.85) and len(data["per_image"]) == 2


@pytest.mark.slow
def test_score_batch_fills_every_column(lite0):
    from conftest import SAMPLES as S

    from cvtools.io.decode import load_image, pil_to_tensor

    x = torch.stack([pil_to_tensor(load_image(S / f"{n}.jpg").rgb.resize((64, 64), Image.BICUBIC))
                     for n in ("chelsea", "coffee")])
    rows = score_batch(lite0, ["gradcam", "eigencam"], x, ["chelsea", "coffee"], target=285, curve_steps=8,
                       batch_size=64)
    assert [r.name for r in rows] == ["chelsea", "coffee"] and rows[1].target == 285
    for r in rows:
        assert set(r.values) == {"gradcam", "eigencam", "random"}
        assert {"seconds", "deletion", "insertion", "road_morf", "road_lerf"} <= set(r.values["gradcam"])
        assert all(0 <= v <= 1 for k, v in r.values["gradcam"].items() if k not in ("seconds", "sanity"))
        assert -1 <= r.values["eigencam"]["sanity"] <= 1 and r.values["random"]["sanity"] == 1.0
    # The cat's Grad-CAM map for "Egyptian cat" is not empty: it has a sanity value, the mean of
    # the cascade's correlations.
    from cvtools.visualize.sanity import cascading_randomization

    rho = cascading_randomization(lite0, x[:1], ["gradcam"], torch.tensor([285])).correlations["gradcam"]
    # Not bitwise: the scorecard ran a batch of 2, this a batch of 1, so fp32 sums run in another
    # order (~1e-7 relative in the maps). At 64 px the CAM is 2x2 upsampled: large groups of
    # nearly equal pixels, whose ranks that noise reorders (measured |Δρ| 2.7e-6). 1e-4 bounds
    # it and still tells the mean of the cascade from any single layer's ρ (they differ by > 0.01).
    assert rows[0].values["gradcam"]["sanity"] == pytest.approx(float(rho.nanmean()), abs=1e-4)


@pytest.mark.slow
def test_cli_score_folder_table_and_json(run_cli, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for n in ("chelsea", "coffee"):
        shutil.copy(SAMPLES / f"{n}.jpg", folder / f"{n}.jpg")
    r = run_cli("visualize", "score", folder, "-m", "gradcam,xgradcam", "--size", "48", "--sanity", "1",
                "--device", "cpu")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("method") and "ROAD MoRF" in lines[0] and "sanity rho" in lines[0]
    assert [ln.split()[0] for ln in lines[2:5]] == ["gradcam", "xgradcam", "random"]
    assert "means over 2 images (sanity rho over the first 1)" in r.stdout
    r = run_cli("visualize", "score", folder, "-m", "gradcam", "--size", "48", "--sanity", "0", "--json",
                "--device", "cpu")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["images"] == 2 and data["means"]["gradcam"]["sanity"] is None
    assert 0 <= data["means"]["random"]["road_morf"] <= 1
    assert sorted(p["image"].split("/")[-1] for p in data["per_image"]) == ["chelsea.jpg", "coffee.jpg"]
    assert not list(folder.glob("*_*"))  # nothing written next to the inputs
