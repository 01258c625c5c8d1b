"""QA sweep findings on `cvtools visualize` (session s): a zero ViT map after the class-token
read-out says why and names the layer to use; -o is checked before the network loads (filters,
activations); a layer that is unknown or gives no feature map is one line naming the network and
suggesting layers, before any photo; a mistyped class name gets a did-you-mean; the slow checks
say what they are doing when stderr is not a terminal.

All on the CPU with tiny random-weight networks: a 2-block ViT at 32 px and a 3-conv CNN saved
as a .pt2 (the same ones tests/test_user_models.py builds).
"""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLES
from torch import nn

from cvtools.backbones import load_user_model
from cvtools.errors import ImageError, UsageError

CPU = dict(device="cpu", precision="fp32")
PHOTO = SAMPLES / "chelsea.jpg"


def tiny_vit(classes: int = 5):
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=classes).eval()
    nn.init.normal_(vit.heads.head.weight)  # torchvision starts the head at zero: every gradient would be 0
    return vit


class SmallNet(nn.Module):
    def __init__(self, classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture(scope="module")
def vit():
    return load_user_model(tiny_vit(), **CPU)


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    """The small CNN as an exported program, with classes 'cat' and 'dog'."""
    d = tmp_path_factory.mktemp("qa_s")
    torch.manual_seed(0)
    net = SmallNet().eval()
    dynamic = {"x": {0: torch.export.Dim.DYNAMIC}}
    torch.export.save(torch.export.export(net, (torch.rand(2, 3, 32, 32),), dynamic_shapes=dynamic), d / "net.pt2")
    (d / "labels.txt").write_text("cat\ndog\n")
    return d / "net.pt2", d / "labels.txt"


# ---------------------------------------------------------------------- 1: a zero map after the read-out


@pytest.mark.parametrize("layer", ["encoder.ln", "encoder.layers.encoder_layer_1.mlp"])
def test_a_zero_vit_map_after_the_class_token_read_out_names_the_layer_to_use(vit, layer):
    from cvtools.visualize.explain import Explainer

    notes = []
    Explainer(vit, ["gradcam"], layer=layer, on_note=notes.append).explain(torch.rand(2, 3, 32, 32))
    assert len(notes) == 1, notes
    assert "class-token read-out" in notes[0] and "untrained head" not in notes[0], notes[0]
    assert f"pick {vit.defaults.cam} (the default)" in notes[0], notes[0]
    assert vit.defaults.cam == "encoder.layers.encoder_layer_1.ln_1"
    notes.clear()  # at the default layer the map is not zero: no note at all
    Explainer(vit, ["gradcam"], on_note=notes.append).explain(torch.rand(2, 3, 32, 32))
    assert notes == []


def test_layer_help_says_what_to_pick_on_a_vit(run_cli):
    r = run_cli("visualize", "gradcam", "--help")
    assert r.exit_code == 0 and "class token" in " ".join(r.output.split()), r.output


# ---------------------------------------------------------------------- 2: -o before the network loads


def _no_loading(monkeypatch):
    import cvtools.cli.visualize as cli_visualize

    def load(**options):
        raise AssertionError("the network was loaded before -o was checked")

    monkeypatch.setattr(cli_visualize, "load_backbone_from_options", load)


@pytest.mark.parametrize("command", ["filters", "activations"])
def test_a_bad_output_name_is_refused_before_the_network_loads(run_cli, monkeypatch, tmp_path, net_file, command):
    _no_loading(monkeypatch)
    args = ["visualize", command] + ([PHOTO] if command == "activations" else [])
    r = run_cli(*args, "--model", net_file[0], "-o", tmp_path / "noext", "--device", "cpu")
    assert r.exit_code != 0 and "AssertionError" not in repr(r.exc_info), r.output
    assert "noext: unknown output format '(no extension)'" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_the_library_checks_the_output_name_first(tmp_path):
    from cvtools.visualize.job import check_output_name, render_filters

    with pytest.raises(ImageError, match="unknown output format '.txt'"):
        render_filters("no_such_backbone", tmp_path / "grid.txt")  # the name is refused before the backbone
    check_output_name(tmp_path / "grid.png")
    check_output_name(tmp_path / "noext", many=True)  # a folder for several inputs
    check_output_name(str(tmp_path) + "/new/")


# ---------------------------------------------------------------------- 3: layers that give no map, typos


def test_a_layer_without_a_feature_map_is_refused_up_front_naming_the_network(vit):
    from cvtools.visualize.explain import Explainer
    from cvtools.visualize.job import activations_work, score_work

    for build in (lambda: Explainer(vit, ["gradcam"], layer="heads.head"),
                  lambda: score_work(vit, ["gradcam"], layer="heads.head"),
                  lambda: activations_work(vit, "heads.head")):
        with pytest.raises(UsageError) as caught:
            build()
        text = str(caught.value)
        assert "\n" not in text and "'heads.head'" in text and vit.name in text, text
        assert f"{vit.defaults.cam} (the default)" in text and "cvtools layers --model FILE" in text, text


def test_an_unknown_layer_gets_a_suggestion_not_the_whole_list(vit):
    from cvtools.visualize.explain import Explainer

    with pytest.raises(UsageError) as caught:
        Explainer(vit, ["gradcam"], layer="nosuch")
    text = str(caught.value)
    assert "valid layers" not in text and "encoder.layers.encoder_layer_0.mlp.0" not in text, text
    assert "unknown layer 'nosuch'" in text and "`cvtools layers --model FILE` lists them" in text, text
    with pytest.raises(UsageError, match="did you mean 'encoder.layers.encoder_layer_1.ln_1'"):
        Explainer(vit, ["gradcam"], layer="encoder.layers.encoder_layer_1.ln1")


def test_the_cli_blames_the_layer_not_the_photo(run_cli, tmp_path, net_file):
    r = run_cli("visualize", "gradcam", PHOTO, "--model", net_file[0], "--layer", "fc", "-o", tmp_path / "o.png",
                "--device", "cpu")
    assert r.exit_code != 0 and "chelsea.jpg" not in r.output, r.output
    assert "--layer fc of net.pt2 does not output a feature map" in r.output, r.output
    assert "features (the default)" in r.output and not list(tmp_path.iterdir()), r.output


# ---------------------------------------------------------------------- 4: a mistyped class name


def test_a_mistyped_class_name_gets_a_did_you_mean(run_cli, tmp_path, net_file):
    from cvtools.visualize.model import checked_target

    with pytest.raises(UsageError, match=r"no class named 'dgo'; did you mean 'dog'\?"):
        checked_target("dgo", ["cat", "dog"])
    assert checked_target("dog", ["cat", "dog"]) == 1
    with pytest.raises(UsageError, match="no class named 'zebra'; `cvtools classify PHOTO`"):
        checked_target("zebra", ["cat", "dog"])  # nothing close: the old pointer stays
    r = run_cli("visualize", "gradcam", PHOTO, "--model", net_file[0], "--classes", net_file[1], "--target", "dgo",
                "-o", tmp_path / "o.png", "--device", "cpu")
    assert r.exit_code != 0 and "did you mean 'dog'?" in r.output, r.output
    r = run_cli("visualize", "gradcam", PHOTO, "--target", "hne", "-o", tmp_path / "o.png")  # ImageNet, no torch
    assert r.exit_code != 0 and "'hen'" in r.output, r.output


# ---------------------------------------------------------------------- 5: progress when piped


def test_the_slow_checks_say_what_they_do_when_stderr_is_not_a_terminal(run_cli, tmp_path, net_file):
    common = ["--model", net_file[0], "--size", "32", "--device", "cpu"]
    # ROAD's imputation takes a minute even here: left out (it runs inside the same metrics stage).
    r = run_cli("visualize", "score", PHOTO, "-m", "gradcam,saliency", "--sanity", "1", "--no-road", *common)
    assert r.exit_code == 0, r.output
    for stage in ("gradcam maps (1 image)", "saliency maps (1 image)", "metrics of 2 methods and a random map",
                  "sanity check of 2 methods"):
        assert f"visualize: {stage}..." in r.stderr and f"visualize: {stage}: done in" in r.stderr, r.stderr
    assert "visualize:" not in r.stdout  # the table alone on stdout
    r = run_cli("visualize", "score", PHOTO, "-m", "gradcam", "--sanity", "0", "--no-road", "-q", *common)
    assert r.exit_code == 0 and "visualize:" not in r.stderr, r.stderr
    r = run_cli("visualize", "gradcam", PHOTO, "--sanity", "-o", tmp_path / "o.png", *common)
    assert r.exit_code == 0, r.output
    assert "visualize: sanity check of gradcam (1 image): done in" in r.stderr, r.stderr


def test_explainer_metrics_are_a_stage(monkeypatch, vit):
    from cvtools.visualize import metrics
    from cvtools.visualize.explain import Explainer

    def quick(backbone, x, heat, target, **options):  # ROAD's imputation would take a minute
        return {m: [None] * len(x) for m in heat}

    monkeypatch.setattr(metrics, "faithfulness", quick)
    stages = []
    Explainer(vit, ["gradcam"], on_stage=stages.append).run(torch.rand(2, 3, 32, 32), metrics=True)
    assert stages[0] == "metrics of gradcam (2 images)..." and stages[1].startswith("metrics of gradcam (2 images): "
                                                                                      "done in "), stages
