"""QA sweep t: three user-facing problems of the command line and the web page.

- ``cvtools dream photo.jpg --layer blocks.10:500-600`` with a photo_dream.jpg already there said
  "photo_dream.jpg exists ...; writing photo_dream-2.jpg" and only then refused the channels
  (known once the network is built): the note about the name now comes once the work is known
  to be valid, and only then.
- A state dict with every key the user's model needs plus a few it does not (an auxiliary head,
  a loss's weights, an EMA counter) was refused: it now loads, with one note naming the extra
  keys. Missing keys, other shapes and keys inside the network's own modules are still refused.
- Several methods' output names joined them with '+' (the web page: "gradcam+gradcam++") or
  '-' (the command line: "integrated-gradients-saliency"), both inside method names: they are
  now joined with '_', which no method name holds; a single method keeps its name.

Small inputs on the CPU, random weights where the weights do not matter.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from PIL import Image
from torch import nn

from cvtools.errors import WeightsError

EXACT = dict(device="cpu", precision="fp32", fuse=False, channels_last=False)


def photo(folder, name="photo.jpg", size=(64, 48)):
    path = folder / name
    Image.new("RGB", size, (120, 30, 200)).save(path)
    return path


# ----------------------------------------------------------------------------- 1: dream's rename note


def test_dream_refused_channels_come_without_the_rename_note(tmp_path, run_cli):
    photo(tmp_path)
    foreign = tmp_path / "photo_dream.jpg"
    Image.new("RGB", (8, 8)).save(foreign)  # not made by cvtools: a new dream would be photo_dream-2.jpg
    before = foreign.read_bytes()
    r = run_cli("dream", tmp_path / "photo.jpg", "--layer", "blocks.10:500-600", "--weights", "random",
                "--device", "cpu")
    assert r.exit_code != 0
    assert "channels 500-600 do not exist" in r.stderr
    assert "writing" not in r.output and "photo_dream-2" not in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg", "photo_dream.jpg"]
    assert foreign.read_bytes() == before


def test_dream_that_runs_still_says_where_it_writes(tmp_path, run_cli):
    photo(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo_dream.jpg")
    r = run_cli("dream", tmp_path / "photo.jpg", "--layer", "blocks.10:0-3", "--weights", "random", "--device", "cpu",
                "--octaves", "1", "--steps", "1")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("writing") == 1 and "photo_dream-2.jpg" in r.stderr, r.stderr
    assert (tmp_path / "photo_dream-2.jpg").is_file()


def test_visualize_refused_model_layer_comes_without_the_rename_note(tmp_path, run_cli):
    """A --model's layers are known once it loads: a --layer it lacks was refused after
    "photo_gradcam.jpg exists ...; writing photo_gradcam-2.jpg"."""
    import torchvision

    photo(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo_gradcam.jpg")
    model = saved(tmp_path, torchvision.models.resnet18(weights=None, num_classes=4).state_dict(), "r18.pth")
    args = ("visualize", "gradcam", tmp_path / "photo.jpg", "--model", model, "--architecture", "resnet18",
            "--input-size", "64", "--device", "cpu")
    r = run_cli(*args, "--layer", "bogus")
    assert r.exit_code != 0 and "unknown layer 'bogus'" in r.stderr
    assert "writing" not in r.output, r.output
    assert not (tmp_path / "photo_gradcam-2.jpg").exists()
    r = run_cli(*args)  # the same run with a layer it has: the note, and the file it names
    assert r.exit_code == 0 and "writing" in r.stderr and (tmp_path / "photo_gradcam-2.jpg").is_file(), r.output


def test_activations_refused_channels_come_without_the_rename_note(tmp_path, run_cli):
    photo(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo_act-blocks.10.png")
    r = run_cli("visualize", "activations", tmp_path / "photo.jpg", "-l", "blocks.10", "-c", "500:600",
                "--weights", "random", "--device", "cpu")
    assert r.exit_code != 0 and "blocks.10 has 112 channels" in r.stderr, r.output
    assert "writing" not in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg", "photo_act-blocks.10.png"]


# ----------------------------------------------------------------------------- 2: extra checkpoint keys


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def saved(tmp_path, state, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def with_extras(state, count=3):
    extras = {"aux.weight": torch.randn(10, 16), "criterion.weight": torch.ones(10),
              "n_averaged": torch.tensor(7)}
    extras.update({f"ema.shadow{i}": torch.zeros(2) for i in range(count - 3)})
    return {**state, **dict(list(extras.items())[:count])}


def test_extra_keys_load_with_one_note_naming_them(tmp_path):
    from cvtools.backbones import load_user_model

    torch.manual_seed(0)
    net = Net()
    path = saved(tmp_path, with_extras(net.state_dict()))
    notes = []
    bb = load_user_model(path, Net, on_note=notes.append, **EXACT)
    assert len(notes) == 1, notes
    assert all(k in notes[0] for k in ("ckpt.pth", "aux.weight", "criterion.weight", "n_averaged")), notes[0]
    assert "\n" not in notes[0]
    loaded = bb.model.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())


def test_many_extra_keys_are_shortened_to_the_first_few_and_a_count(tmp_path):
    from cvtools.backbones import load_user_model

    path = saved(tmp_path, with_extras(Net().state_dict(), count=12))
    notes = []
    load_user_model(path, Net, on_note=notes.append, **EXACT)
    assert len(notes) == 1 and "aux.weight" in notes[0] and "9 more" in notes[0], notes
    assert "ema.shadow8" not in notes[0]


def test_extra_keys_without_on_note_are_one_warning(tmp_path):
    from cvtools.backbones import load_user_model

    path = saved(tmp_path, with_extras(Net().state_dict()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_user_model(path, Net, **EXACT)
    ours = [w for w in caught if "aux.weight" in str(w.message)]
    assert len(ours) == 1


@pytest.mark.parametrize("damage, words", [
    (lambda s: s.pop("fc.bias"), "missing"),
    (lambda s: s.update({"fc.weight": torch.zeros(10, 15)}), "another shape"),
])
def test_missing_keys_and_other_shapes_are_still_refused_with_extras(tmp_path, damage, words):
    from cvtools.backbones import load_user_model

    state = with_extras(Net().state_dict())
    damage(state)
    with pytest.raises(WeightsError, match=words):
        load_user_model(saved(tmp_path, state), Net, **EXACT)


def test_extra_keys_inside_the_networks_own_modules_are_still_refused(tmp_path):
    """A resnet34 state dict holds every key of resnet18 with its shape (and more blocks): those
    extras say it is another network, not a training script's leftovers."""
    import torchvision

    from cvtools.backbones import load_user_model

    path = saved(tmp_path, torchvision.models.resnet34(weights=None).state_dict())
    with pytest.raises(WeightsError, match="unexpected key.*layer"):
        load_user_model(path, "resnet18", **EXACT)


def test_cli_model_with_extra_keys_classifies_with_one_note(tmp_path, run_cli):
    import torchvision

    state = torchvision.models.resnet18(weights=None, num_classes=4).state_dict()
    state.update({"aux.weight": torch.zeros(4, 8), "criterion.weight": torch.ones(4)})
    path = saved(tmp_path, state, "resnet18_ft.pth")
    r = run_cli("classify", photo(tmp_path), "--model", path, "--architecture", "resnet18", "--input-size", "64",
                "--device", "cpu")
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "aux.weight" in notes[0] and "criterion.weight" in notes[0], r.stderr
    assert "class 0" in r.stdout or "class 1" in r.stdout or "class 2" in r.stdout or "class 3" in r.stdout


# ----------------------------------------------------------------------------- 3: several methods' names


def test_method_separator_is_in_no_method_name_and_safe_in_file_names():
    from cvtools.visualize.catalog import ALIASES, METHOD_INFO, METHOD_SEPARATOR, file_slug

    names = set(METHOD_INFO) | set(ALIASES.values()) | {file_slug(m) for m in METHOD_INFO}
    assert not any(METHOD_SEPARATOR in n for n in names)
    assert METHOD_SEPARATOR and not set(METHOD_SEPARATOR) & set('<>:"/\\|?*+,. ')


def test_several_methods_name_splits_back_into_them():
    from cvtools.visualize.catalog import METHOD_INFO, METHOD_SEPARATOR, file_slug
    from cvtools.visualize.job import output_suffix

    for count in (2, 3):
        for methods in itertools.permutations(METHOD_INFO, count):
            assert output_suffix(methods).split(METHOD_SEPARATOR) == [file_slug(m) for m in methods]
    assert output_suffix(["gradcam", "gradcam++"]) == "gradcam_gradcampp"


def test_single_methods_keep_their_names():
    from cvtools.visualize.job import output_suffix

    assert output_suffix(["gradcam++"]) == "gradcampp"
    assert output_suffix(["integrated-gradients"]) == "integrated-gradients"
    assert output_suffix(list("abcd")) == "methods"


def test_cli_panel_of_two_methods_is_named_with_the_separator(tmp_path, run_cli):
    photo(tmp_path)
    r = run_cli("visualize", "gradcam,gradcam++", tmp_path / "photo.jpg", "--weights", "random", "--device", "cpu",
                "--size", "64")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "photo_gradcam_gradcampp.jpg").is_file(), sorted(p.name for p in tmp_path.iterdir())


def test_web_page_panel_is_named_with_the_separator(tmp_path):
    from cvtools.ui.library import Library

    answer = Library(device="cpu").explain(photo(tmp_path), ["gradcam", "gradcam++"])
    assert answer["panel"].name == "photo_gradcam_gradcam++.png"
    assert [p["path"].name for p in answer["pictures"]] == ["photo_gradcam.png", "photo_gradcam++.png"]


def test_dream_of_a_video_with_refused_channels_comes_without_the_rename_note(tmp_path, run_cli):
    av = pytest.importorskip("av")
    import numpy as np

    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (tmp_path / "clip_dream.mp4").write_bytes(clip.read_bytes())  # not made by cvtools dream
    r = run_cli("dream", clip, "--layer", "blocks.10:500-600", "--weights", "random", "--device", "cpu")
    assert r.exit_code != 0 and "channels 500-600 do not exist" in r.stderr
    assert "writing" not in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip_dream.mp4"]


def test_layers_of_a_model_with_extra_keys_notes_them_in_one_line(tmp_path, run_cli):
    import torchvision

    state = torchvision.models.resnet18(weights=None, num_classes=4).state_dict()
    state["criterion.weight"] = torch.ones(4)
    r = run_cli("layers", "--model", saved(tmp_path, state, "ft.pth"), "--architecture", "resnet18")
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if "criterion.weight" in line]
    assert len(notes) == 1 and notes[0].startswith("cvtools: note: ") and "Warning" not in r.stderr, r.stderr


def test_averaged_model_state_dict_loads_leaving_out_its_counter(tmp_path):
    """torch.optim.swa_utils.AveragedModel saves ``module.*`` and ``n_averaged``: the wrapper's
    prefix is stripped and the counter left out, with the note."""
    from torch.optim.swa_utils import AveragedModel

    from cvtools.backbones import load_user_model

    torch.manual_seed(1)
    net = Net()
    ema = AveragedModel(net)
    path = saved(tmp_path, ema.state_dict())
    notes = []
    bb = load_user_model(path, Net, on_note=notes.append, **EXACT)
    assert len(notes) == 1 and "n_averaged" in notes[0] and "1 key " in notes[0], notes
    loaded = bb.model.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())
