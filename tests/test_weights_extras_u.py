"""--weights FILE for a registered backbone takes a checkpoint with every key the network needs
plus a training script's extras (an auxiliary head, a loss's weights, AveragedModel's
``n_averaged``), as --model does: the extras are left out with one note naming them. Missing
keys, other shapes and extras inside the network's own modules are still refused in one line
naming the file.

Small inputs on the CPU; the weights are a random Lite0's, saved as the user would.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from PIL import Image

from cvtools.errors import WeightsError

EXACT = dict(device="cpu", precision="fp32", fuse=False, channels_last=False)


def lite0_state():
    from cvtools.backbones.efficientnet_lite import efficientnet_lite

    torch.manual_seed(5)
    net = efficientnet_lite("efficientnet_lite0")
    for m in net.modules():  # BatchNorm statistics other than the defaults, so a load shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def with_extras(state, count=3):
    extras = {"aux.weight": torch.randn(10, 16), "criterion.weight": torch.ones(10),
              "n_averaged": torch.tensor(7)}
    extras.update({f"ema.shadow{i}": torch.zeros(2) for i in range(count - 3)})
    return {**state, **dict(list(extras.items())[:count])}


def save(tmp_path, state, name="ft.safetensors"):
    path = tmp_path / name
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("name", ["ft.safetensors", "ft.pth"])
def test_weights_with_extra_keys_load_with_one_note_naming_them(tmp_path, name):
    from cvtools.backbones import load_backbone

    state = lite0_state()
    path = save(tmp_path, with_extras(state), name)
    notes = []
    bb = load_backbone("efficientnet_lite0", weights=str(path), on_note=notes.append, **EXACT)
    assert len(notes) == 1, notes
    assert all(k in notes[0] for k in (name, "aux.weight", "criterion.weight", "n_averaged")), notes[0]
    assert "3 keys" in notes[0] and "efficientnet_lite0" in notes[0] and "\n" not in notes[0]
    loaded = bb.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())  # not fused: the file's tensors exactly


def test_many_extra_keys_are_shortened_to_the_first_few_and_a_count(tmp_path):
    from cvtools.backbones import load_backbone

    path = save(tmp_path, with_extras(lite0_state(), count=12))
    notes = []
    load_backbone("efficientnet_lite0", weights=str(path), on_note=notes.append, **EXACT)
    assert len(notes) == 1 and "12 keys" in notes[0] and "aux.weight" in notes[0] and "9 more" in notes[0], notes
    assert "ema.shadow8" not in notes[0]


def test_extra_keys_without_on_note_are_one_warning(tmp_path):
    from cvtools.backbones import load_backbone

    path = save(tmp_path, with_extras(lite0_state()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_backbone("efficientnet_lite0", weights=str(path), **EXACT)
    assert len([w for w in caught if "aux.weight" in str(w.message)]) == 1


def test_weights_without_extras_say_nothing(tmp_path):
    from cvtools.backbones import load_backbone

    notes = []
    load_backbone("efficientnet_lite0", weights=str(save(tmp_path, lite0_state())), on_note=notes.append, **EXACT)
    assert notes == []


@pytest.mark.parametrize("damage, words", [
    (lambda s: s.pop("_fc.bias"), "1 missing key"),
    (lambda s: s.update({"_fc.weight": torch.zeros(1000, 1279)}), "1 of another shape"),
    # inside the network's own modules: another network's keys, not a training script's extras
    (lambda s: s.update({"_blocks.99.weight": torch.zeros(3)}), "1 unexpected key"),
])
def test_missing_keys_other_shapes_and_keys_inside_the_network_are_still_refused(tmp_path, damage, words):
    from cvtools.backbones import load_backbone

    state = with_extras(lite0_state())
    damage(state)
    path = save(tmp_path, state)
    with pytest.raises(WeightsError, match=words) as caught:
        load_backbone("efficientnet_lite0", weights=str(path), on_note=pytest.fail, **EXACT)
    message = str(caught.value)
    assert "ft.safetensors" in message and "\n" not in message, message


def test_a_bigger_torchvision_network_is_still_refused(tmp_path):
    """A resnet34 state dict holds every key of resnet18 with its shape, and more blocks."""
    import torchvision

    from cvtools.backbones import load_backbone

    path = save(tmp_path, torchvision.models.resnet34(weights=None).state_dict(), "r34.pth")
    with pytest.raises(WeightsError, match=r"r34.pth: .*unexpected key.*layer"):
        load_backbone("resnet18", weights=str(path), on_note=pytest.fail, **EXACT)


def test_torchvision_weights_with_extras_load(tmp_path):
    import torchvision

    from cvtools.backbones import load_backbone

    torch.manual_seed(2)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = save(tmp_path, with_extras(state), "r18.pth")
    notes = []
    bb = load_backbone("resnet18", weights=str(path), on_note=notes.append, **EXACT)
    assert len(notes) == 1 and "r18.pth" in notes[0] and "n_averaged" in notes[0], notes
    loaded = bb.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_cli_gradcam_with_extra_keys_in_weights_runs_with_one_note(tmp_path, run_cli):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (120, 30, 200)).save(photo)
    path = save(tmp_path, with_extras(lite0_state()))
    r = run_cli("visualize", "gradcam", photo, "--backbone", "efficientnet_lite0", "--weights", path,
                "--device", "cpu", "--size", "64")
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if "aux.weight" in line]
    assert len(notes) == 1 and notes[0].startswith("cvtools: note: "), r.stderr
    assert "ft.safetensors" in notes[0] and "Warning" not in r.stderr, r.stderr
    assert (tmp_path / "photo_gradcam.jpg").is_file()


def test_cli_weights_missing_a_key_is_one_line_naming_the_file(tmp_path, run_cli):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48)).save(photo)
    state = with_extras(lite0_state())
    state.pop("_fc.weight")
    path = save(tmp_path, state)
    r = run_cli("visualize", "gradcam", photo, "--weights", path, "--device", "cpu", "--size", "64")
    assert r.exit_code != 0
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "ft.safetensors" in errors[0] and "missing key" in errors[0], r.stderr
