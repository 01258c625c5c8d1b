"""The face-against-its-surroundings term (issue 29): face boxes, the crops' face channel, the
darker-face augmentation and the loss. CPU, tiny images."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cvtools.style.faces import (
    DARKEN_RANGE,
    FREE_PHOTO_FACES,
    darken_faces,
    face_boxes_for,
    face_mask,
    face_weights,
    load_face_boxes,
)
from cvtools.style.losses import check_objective, face_contrast_distance


def portrait(n=2, size=64, face=0.3, surround=0.8):
    """N photos: a uniform surround with a square face of another light in the middle, and the
    face's weights (1 inside the square)."""
    photos = torch.full((n, 3, size, size), surround)
    faces = torch.zeros(n, 1, size, size)
    a, b = size // 4, 3 * size // 4
    photos[:, :, a:b, a:b] = face
    faces[:, :, a:b, a:b] = 1
    return photos, faces


def test_the_bundled_boxes_load_and_name_the_free_photos():
    boxes = load_face_boxes()
    assert FREE_PHOTO_FACES.is_file() and len(boxes) == 9
    assert all(0 <= v <= 1 for bs in boxes.values() for b in bs for v in b)
    m = torch.from_numpy(np.asarray(face_mask((20, 10), [[0.0, 0.0, 0.5, 0.5]])).copy())
    assert m.shape == (10, 20)
    assert (m[:5, :10] == 255).all() and m[6:].max() == 0 and m[:, 11:].max() == 0


@pytest.mark.parametrize("text, what", [
    ("[1, 2]", "must map"),
    ('{"a.jpg": 3}', "list of boxes"),
    ('{"a.jpg": [[0.5, 0.1, 0.4, 0.2]]}', "x0 < x1"),
    ('{"a.jpg": [[0.1, 0.1, 0.4, 1.5]]}', "fractions"),
    ('{"a.jpg": [[0.1, 0.1, 0.4, NaN]]}', "fractions"),
    ('{"a.jpg": [[0.1, 0.1, 0.4]]}', "fractions"),
    ("{not json", "not a face-boxes JSON"),
])
def test_a_bad_boxes_file_is_one_error_naming_it(tmp_path, text, what):
    f = tmp_path / "boxes.json"
    f.write_text(text)
    with pytest.raises(ValueError, match=what) as e:
        load_face_boxes(f)
    assert "boxes.json" in str(e.value)


def test_only_a_face_contrast_objective_reads_boxes(tmp_path):
    assert face_boxes_for(None) is None and face_boxes_for({"tone_weight": 3}) is None
    f = tmp_path / "b.json"
    f.write_text(json.dumps({"x.png": [[0.1, 0.2, 0.3, 0.4]]}))
    assert face_boxes_for({"face_contrast_weight": 5, "face_boxes": str(f)}) == {"x.png": [[0.1, 0.2, 0.3, 0.4]]}
    assert len(face_boxes_for({"face_contrast_weight": 5})) == 9


@pytest.mark.parametrize("bad", [{"face_contrast_weight": -1}, {"darker_faces": 1.5}, {"darker_faces": True},
                                 {"face_boxes": 3}])
def test_face_options_are_validated(bad):
    with pytest.raises(ValueError):
        check_objective(bad)


def test_face_contrast_holds_the_difference_not_the_face_light():
    photos, faces = portrait()
    # kept: the photo itself, and the whole picture lighter or darker by one amount (luminance is a
    # weighted mean with weights summing to 1, so Δ is unchanged up to fp32 rounding, ~1e-7)
    assert face_contrast_distance(photos, photos, faces).abs().max() < 1e-10
    assert face_contrast_distance(photos + 0.15, photos, faces).abs().max() < 1e-10
    assert face_contrast_distance(photos - 0.2, photos, faces).abs().max() < 1e-10
    # the face painted as light as its surround: Δ went from -0.5 to 0, the term (0.5)²
    pale = torch.full_like(photos, 0.8)
    assert torch.allclose(face_contrast_distance(pale, photos, faces), torch.full((2,), 0.25), atol=1e-5)


def test_face_contrast_is_zero_without_a_face_and_for_a_speck():
    photos, faces = portrait()
    pale = torch.full_like(photos, 0.8)
    assert face_contrast_distance(pale, photos, torch.zeros_like(faces)).abs().max() == 0
    speck = torch.zeros_like(faces)
    speck[:, :, 30:35, 30:35] = 1  # 25 px: under half an 8×8 block
    assert face_contrast_distance(pale, photos, speck).abs().max() == 0


def test_face_contrast_has_a_gradient_towards_the_photo():
    photos, faces = portrait(n=1)
    out = torch.full_like(photos, 0.8).requires_grad_(True)
    face_contrast_distance(out, photos, faces).sum().backward()
    g = out.grad
    inside = faces.bool().expand_as(g)
    assert (g[inside] > 0).all()  # darken the face ...
    assert (g[~inside] <= 0).all() and (g[~inside] < 0).any()  # ... and lighten its ring


def test_darker_faces_touch_only_faces_of_the_picked_photos():
    torch.manual_seed(0)
    photos = (torch.rand(16, 3, 32, 32) * 255).round() / 255
    faces = torch.zeros(16, 1, 32, 32)
    faces[:, :, 8:24, 8:24] = 1
    out = darken_faces(photos, faces, 0.5, step=7)
    assert torch.equal(out, darken_faces(photos, faces, 0.5, step=7))  # a function of the step
    assert not torch.equal(out, darken_faces(photos, faces, 0.5, step=8))
    outside = ~faces.bool().expand_as(photos)
    assert torch.equal(out[outside], photos[outside])
    changed = (out != photos).flatten(1).any(1)
    assert 0 < changed.sum() < 16
    # a changed face keeps DARKEN_RANGE of its light, to within the 8-bit rounding (0.5/255)
    for i in torch.nonzero(changed).flatten():
        p, o = photos[i, :, 8:24, 8:24], out[i, :, 8:24, 8:24]
        bright = p > 0.3
        ratio = o[bright] / p[bright]
        slack = 0.5 / 255 / 0.3
        assert DARKEN_RANGE[0] - slack <= ratio.min() and ratio.max() <= DARKEN_RANGE[1] + slack
        assert ratio.max() - ratio.min() <= 2 * slack  # one factor per photo
    assert torch.equal(darken_faces(photos, faces, 0.0, step=7), photos)


def test_face_weights_keep_skin_inside_the_boxes():
    photos = torch.zeros(1, 3, 32, 32)
    photos[:, 0], photos[:, 1], photos[:, 2] = 0.55, 0.38, 0.30  # a brown skin colour
    photos[:, :, :, 16:] = torch.tensor([0.1, 0.3, 0.8]).view(1, 3, 1, 1)  # blue on the right
    boxes = torch.ones(1, 1, 32, 32)
    w = face_weights(photos, boxes)
    assert w[..., :, :12].mean() > 0.5 and w[..., :, 20:].mean() < 0.1
    assert face_weights(photos, torch.zeros_like(boxes)).max() == 0


def test_crops_carry_their_face_boxes_with_them(tmp_path):
    from cvtools.style.train_data import PhotoCrops

    # a photo red on its left third, grey elsewhere, with a box drawn over the red third
    img = Image.new("RGB", (120, 90), (128, 128, 128))
    img.paste((220, 30, 30), (0, 0, 40, 90))
    img.save(tmp_path / "p.png")
    crops = PhotoCrops([tmp_path / "p.png"], 48, seed=3, scale=(0.3, 1.0),
                       face_boxes={"p.png": [[0.0, 0.0, 40 / 120, 1.0]]})
    plain = PhotoCrops([tmp_path / "p.png"], 48, seed=3, scale=(0.3, 1.0))
    flipped_seen = set()
    for k in range(12):
        x = crops[k]
        assert x.shape == (4, 48, 48) and x.dtype == torch.uint8
        assert torch.equal(x[:3], plain[k])  # the same crop as without boxes
        red = (x[0].int() - x[1].int()) > 100
        boxed = x[3] > 128
        # away from the bilinear edge (one output px), the box is exactly the red area
        edge = torch.nn.functional.max_pool2d((red ^ boxed).float()[None, None], 3, 1, 1)[0, 0]
        assert (red ^ boxed).float().mean() < 0.05 and edge.mean() < 0.15
        if red.any():
            flipped_seen.add(bool(red[:, -1].any()))
    assert flipped_seen == {True, False}  # crops were flipped both ways, and the box with them


@pytest.mark.slow
def test_training_with_the_face_term_records_it(tmp_path, monkeypatch, lite0):
    import cvtools.backbones
    from cvtools.style.train import TrainConfig, train_style

    monkeypatch.setattr(cvtools.backbones, "load_backbone", lambda *a, **k: lite0)
    photos = tmp_path / "photos"
    photos.mkdir()
    im = Image.new("RGB", (96, 96), (200, 200, 210))
    im.paste((140, 95, 75), (24, 24, 72, 72))  # a brown face on a light wall
    im.save(photos / "a.png")
    im.save(photos / "b.png")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [[0.25, 0.25, 0.75, 0.75]], "b.png": [[0.25, 0.25, 0.75, 0.75]]}))
    painting = tmp_path / "painting.png"
    Image.new("RGB", (64, 64), (230, 220, 190)).save(painting)
    objective = {"tone_weight": 1.0, "face_contrast_weight": 50.0, "darker_faces": 0.5, "face_boxes": str(boxes)}
    c = TrainConfig(style_image=str(painting), photos=str(photos), name="f", output=str(tmp_path / "out"),
                    batch_size=2, image_size=48, style_size=64, width=0.25, device="cpu", workers=0, steps=2,
                    crop_scale=(0.9, 1.0), preview_every=0, checkpoint_every=0, log_every=1, objective=objective)
    result = train_style(c)
    record = json.loads(result.record_path.read_text())
    assert record["recipe"]["objective"] == objective
    assert record["training"]["final_losses"]["face"] > 0
