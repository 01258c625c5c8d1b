"""tools/people_quality.py's per-photo measures (issue 29's yardstick for people and animals): what
each column says for pictures whose answer follows from the definition. CPU, tiny images."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import people_quality  # noqa: E402

BOXES = [(0.25, 0.25, 0.75, 0.75)]


def _photo(seed=0):
    g = torch.Generator().manual_seed(seed)
    photo = torch.rand(3, 64, 64, generator=g) * 0.6 + 0.2
    photo[0, 16:48, 16:48] += 0.15  # a warmer, lighter subject in the box
    return photo.clamp(0, 1)


def test_chroma_is_zero_for_grey_and_linear_in_saturation():
    grey = torch.full((3, 4, 4), 0.37)
    assert float(people_quality.chroma(grey).abs().max()) < 1e-6  # Cb and Cr weights each sum to 0
    red = torch.zeros(3, 1, 1)
    red[0] = 1
    assert float(people_quality.chroma(red)) == pytest.approx((0.168736 ** 2 + 0.5 ** 2) ** 0.5, rel=1e-6)


def test_the_photo_against_itself_keeps_everything():
    photo = _photo()
    m = people_quality.measure(photo, photo, BOXES)
    for key in ("subject_kept", "subject_chroma_kept", "face_contrast_kept"):
        assert m[key] == pytest.approx(1.0, abs=1e-5), key
    assert m["subject_shift"] == pytest.approx(0.0, abs=1e-6)
    assert m["subject_lightness_shift"] == pytest.approx(0.0, abs=1e-6)


def test_chroma_kept_reads_a_greyed_subject():
    photo = _photo(1)
    y = people_quality.luminance(photo)[None].expand(3, -1, -1)
    grey = people_quality.measure(photo, y.clone(), BOXES)
    half = people_quality.measure(photo, 0.5 * photo + 0.5 * y, BOXES)
    assert grey["subject_chroma_kept"] == pytest.approx(0.0, abs=1e-5)
    # halfway to grey halves Cb and Cr at every pixel (both are linear and zero on grey)
    assert half["subject_chroma_kept"] == pytest.approx(0.5, abs=1e-5)
    # neither changes the luminance: the luminance columns cannot tell them from the photo
    assert half["subject_lightness_shift"] == pytest.approx(0.0, abs=1e-5)
