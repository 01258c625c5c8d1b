"""QA sweep of user models (cvtools.backbones.user_model): checkpoints under nested wrapper
prefixes load, and the models cvtools cannot run say why in one line naming the file.

- Lightning around DDP saves ``model.module.conv1.weight``; a Lightning module keeping the
  network as ``self.net`` saves ``net.conv1.weight``: every such prefix is stripped, as deep as
  makes the keys the architecture's, and a network whose own keys start with ``model.`` keeps
  them. An unknown prefix on every key is named.
- A model returning a tuple or a dict, or taking 1-channel images, was "runs on none of the
  sizes 224, 32, ...": now what it returned and how to wrap it, or its channel count.
- A 1-channel .pt2 showed torch.export's symbol for its batch (``s77×1×64×64``).
- ``--arch mynet.py:SmallCNN`` says how a class of one's own loads.
- A .pt2 exported at a fixed size ignores ``input_size``: a note says so.

Tiny modules on the CPU, except resnet18 (the architecture the QA reports name) at 64 px.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from cvtools.backbones import load_user_model
from cvtools.errors import CvtoolsError, UsageError, WeightsError

EXACT = dict(device="cpu", precision="fp32", fuse=False, channels_last=False)


class Net(nn.Module):
    """10 classes from ``channels``-channel images of any size."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class TupleNet(Net):
    """Returns (logits, last map), as many training scripts' models do."""

    def forward(self, x):
        f = self.features(x)
        return self.fc(f.mean((2, 3))), f


class DictNet(Net):
    def forward(self, x):
        return {"logits": self.fc(self.features(x).mean((2, 3)))}


class Wrapped(nn.Module):
    """A network whose own keys start with ``model.``: they are its names, not a wrapper's."""

    def __init__(self):
        super().__init__()
        self.model = Net()

    def forward(self, x):
        return self.model(x)


def one_line_naming(exc: CvtoolsError, name: str) -> str:
    text = str(exc)
    assert "\n" not in text and name in text, text
    return text


def scripted(net: nn.Module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(net.eval()), path)
    return path


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    return tmp_path_factory.mktemp("qa_s"), net, net.state_dict()


# ---------------------------------------------------------------------- 1. wrapper prefixes

def test_lightning_around_ddp_loads_as_resnet18(resnet):
    d, net, state = resnet
    torch.save({"state_dict": {"model.module." + k: v for k, v in state.items()}, "epoch": 3}, d / "double.ckpt")
    bb = load_user_model(d / "double.ckpt", "resnet18", input_size=64, **EXACT)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(bb(x), net(bb.normalize(x)))


@pytest.mark.parametrize("prefix", ["net.", "module.model.", "backbone._orig_mod.", "model.module._orig_mod."])
def test_nested_wrapper_prefixes_are_stripped(tmp_path, prefix):
    torch.manual_seed(0)
    net = Net().eval()
    torch.save({"state_dict": {prefix + k: v for k, v in net.state_dict().items()}}, tmp_path / "w.ckpt")
    bb = load_user_model(tmp_path / "w.ckpt", Net, input_size=32, **EXACT)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(bb(x), net(bb.normalize(x)))


def test_an_unknown_prefix_on_every_key_is_named(resnet):
    d, _, state = resnet
    torch.save({"state_dict": {"xyz." + k: v for k, v in state.items()}}, d / "xyz.ckpt")
    with pytest.raises(WeightsError) as exc:
        load_user_model(d / "xyz.ckpt", "resnet18", input_size=64, **EXACT)
    text = one_line_naming(exc.value, "xyz.ckpt")
    assert "every key starts with 'xyz.'" in text and "'xyz.conv1.weight'" in text
    assert "classifier head" not in text  # the old message blamed a missing fc.weight


def test_a_networks_own_model_prefix_is_kept_and_a_wrapper_around_it_stripped(tmp_path):
    torch.manual_seed(0)
    net = Wrapped().eval()
    torch.save(net.state_dict(), tmp_path / "own.pth")  # model.features.0.weight, ...: the network's names
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, tmp_path / "ddp.ckpt")
    x = torch.rand(2, 3, 32, 32)
    for name in ("own.pth", "ddp.ckpt"):
        bb = load_user_model(tmp_path / name, Wrapped, input_size=32, **EXACT)
        with torch.no_grad():
            assert torch.equal(bb(x), net(bb.normalize(x))), name


def test_cli_loads_a_lightning_checkpoint_of_a_net_attribute(resnet, run_cli):
    d, _, state = resnet
    from PIL import Image

    Image.new("RGB", (40, 30), (120, 60, 30)).save(d / "p.jpg")
    torch.save({"state_dict": {"net." + k: v for k, v in state.items()}}, d / "r18_net.ckpt")
    r = run_cli("classify", d / "p.jpg", "--model", d / "r18_net.ckpt", "--arch", "resnet18", "--input-size", "64")
    assert r.exit_code == 0, r.stderr
    assert "class " in r.stdout


# ---------------------------------------------------------------------- 2. what the model returns, its channels

@pytest.mark.parametrize("input_size", [None, 32])  # the size trials, and the probe at a given size
def test_a_tuple_or_dict_output_says_what_it_returned_and_how_to_wrap(input_size):
    for net, returned, pick in ((TupleNet(), "a tuple (a 2×10 tensor, a 2×16×", "return model(x)[0]"),
                                (DictNet(), "a dict ('logits': a 2×10 tensor)", "return model(x)['logits']")):
        with pytest.raises(WeightsError) as exc:
            load_user_model(net.eval(), input_size=input_size, **EXACT)
        text = one_line_naming(exc.value, type(net).__name__)
        assert f"returns {returned}" in text and pick in text, text
        assert "none of the sizes" not in text


def test_a_torchscript_tuple_output_says_so(tmp_path):
    path = scripted(TupleNet(), tmp_path / "tuple.torchscript.pt")
    with pytest.raises(WeightsError) as exc:
        load_user_model(path, **EXACT)
    text = one_line_naming(exc.value, "tuple.torchscript.pt")
    assert "returns a tuple (a 2×10 tensor" in text and "return model(x)[0]" in text


@pytest.fixture(scope="module")
def gray_script(tmp_path_factory):
    return scripted(Net(channels=1), tmp_path_factory.mktemp("gray") / "g.pt")


@pytest.mark.parametrize("input_size", [None, 32])
def test_a_one_channel_model_says_it_takes_grayscale(gray_script, input_size):
    for model, name in ((Net(channels=1).eval(), "Net"), (gray_script, "g.pt")):
        with pytest.raises(WeightsError) as exc:
            load_user_model(model, input_size=input_size, **EXACT)
        text = one_line_naming(exc.value, name)
        assert "1-channel (grayscale) images" in text and "x.mean(1, keepdim=True)" in text, text
        assert "none of the sizes" not in text and "is it an image classifier" not in text


def test_a_model_failing_at_every_size_says_what_torch_said():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()  # MNIST-style: 28×28 gray, flattened
    with pytest.raises(WeightsError) as exc:
        load_user_model(flat, **EXACT)
    text = one_line_naming(exc.value, "Sequential")
    assert "none of the sizes" in text and "at 224 px: mat1 and mat2 shapes cannot be multiplied" in text


# ---------------------------------------------------------------------- 3. a 1-channel program

def test_a_one_channel_program_names_no_export_symbol(tmp_path):
    net = Net(channels=1).eval()
    program = torch.export.export(net, (torch.rand(2, 1, 32, 32),), dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}})
    torch.export.save(program, tmp_path / "gray.pt2")
    with pytest.raises(WeightsError) as exc:
        load_user_model(tmp_path / "gray.pt2", **EXACT)
    text = one_line_naming(exc.value, "gray.pt2")
    assert "N×1×32×32" in text and not re.search(r"\bs\d+×", text), text
    assert "1-channel (grayscale) images" in text and "cvtools feeds RGB" in text and "x.mean(1" in text


# ---------------------------------------------------------------------- 4. an architecture named like a file

def test_an_architecture_named_like_a_file_says_how_to_load_ones_own_class(tmp_path, run_cli):
    from PIL import Image

    torch.save(Net().state_dict(), tmp_path / "cifar_sd.pth")
    Image.new("RGB", (40, 30), (120, 60, 30)).save(tmp_path / "p.jpg")
    with pytest.raises(UsageError) as exc:
        load_user_model(tmp_path / "cifar_sd.pth", "mynet.py:SmallCNN", **EXACT)
    text = str(exc.value)
    assert "unknown architecture 'mynet.py:SmallCNN'" in text and "torch.export" in text
    assert "load_user_model('weights.pth', SmallCNN)" in text
    # What it advises loads: the class itself as the architecture.
    assert load_user_model(tmp_path / "cifar_sd.pth", Net, input_size=32, **EXACT).categories[9] == "class 9"
    r = run_cli("classify", tmp_path / "p.jpg", "--model", tmp_path / "cifar_sd.pth", "--arch", "mynet.py:SmallCNN")
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "pass that file as --model alone" in r.stderr


# ---------------------------------------------------------------------- 5. input_size on a fixed-size program

def test_input_size_on_a_fixed_size_program_is_noted(tmp_path):
    torch.export.save(torch.export.export(Net().eval(), (torch.rand(2, 3, 48, 48),),
                                         dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}}), tmp_path / "fixed.pt2")
    notes = []
    bb = load_user_model(tmp_path / "fixed.pt2", input_size=64, on_note=notes.append, **EXACT)
    assert bb.preprocessing.crop_size == 48
    assert len(notes) == 1 and "fixed.pt2" in notes[0] and "fixed at 48×48" in notes[0] and "64" in notes[0]
    with pytest.warns(UserWarning, match="fixed at 48×48") as caught:  # no on_note: a warning, not silence
        load_user_model(tmp_path / "fixed.pt2", input_size=64, **EXACT)
    assert caught[0].filename == __file__  # pointing at the caller, not inside cvtools
    for same in (48, None):
        load_user_model(tmp_path / "fixed.pt2", input_size=same, on_note=notes.append, **EXACT)
    assert len(notes) == 1


def test_cli_says_the_input_size_a_fixed_size_program_ignores_in_one_line(tmp_path, run_cli):
    """The library's note reaches the command as a `cvtools: note:` line (it was a two-line
    Python warning there)."""
    import warnings

    from PIL import Image

    torch.export.save(torch.export.export(Net().eval(), (torch.rand(2, 3, 48, 48),),
                                         dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}}), tmp_path / "fixed.pt2")
    Image.new("RGB", (60, 50), (90, 120, 30)).save(tmp_path / "p.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would fail the command here
        r = run_cli("classify", tmp_path / "p.jpg", "--model", tmp_path / "fixed.pt2", "--input-size", "64")
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.stderr.splitlines() if "fixed at 48×48" in ln]
    assert len(notes) == 1 and notes[0].startswith("cvtools: note: ") and "fixed.pt2" in notes[0], r.stderr
