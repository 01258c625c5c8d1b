"""Why did it get this one wrong: true classes from an ImageFolder layout or a labels file
(cvtools.visualize.truth), and visualize --truth explaining predicted and true class."""

import json

import pytest
from PIL import Image

from cvtools.errors import ImageError, UsageError
from cvtools.visualize.truth import TrueClasses

CLASSES = ["tench", "golden retriever", "tabby", "tiger cat"]


def test_true_classes_from_folders_and_from_a_labels_file(tmp_path):
    t = TrueClasses.from_folders(CLASSES)
    assert t.index_of(tmp_path / "golden_retriever" / "a.jpg") == 1
    assert t.index_of(tmp_path / "Tabby" / "b.jpg") == 2
    assert t.index_of(tmp_path / "3" / "c.jpg") == 3
    with pytest.raises(ImageError, match="its true class 'tabbby' is none of the network's; did you mean 'tabby'"):
        t.index_of(tmp_path / "tabbby" / "d.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,class\na.jpg,tench\nsub/b.jpg,tiger_cat\n")
    f = TrueClasses.from_file(labels, CLASSES)
    assert f.index_of(tmp_path / "a.jpg") == 0 and f.index_of("sub/b.jpg") == 3
    assert f.index_of(tmp_path / "unlisted.jpg") is None
    (tmp_path / "bad.csv").write_text("justonecolumn\n")
    with pytest.raises(UsageError, match="row 1 is not 'file,class'"):
        TrueClasses.from_file(tmp_path / "bad.csv", CLASSES)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match="binary.csv"):
        TrueClasses.from_file(tmp_path / "binary.csv", CLASSES)


def test_cli_truth_explains_a_wrong_answer_for_both_classes(tmp_path, run_cli):
    from conftest import SAMPLES

    (tmp_path / "tabby").mkdir()
    (tmp_path / "espresso").mkdir()
    Image.open(SAMPLES / "chelsea.jpg").save(tmp_path / "tabby" / "cat.jpg")  # Lite0 says "tiger cat"
    Image.open(SAMPLES / "coffee.jpg").save(tmp_path / "espresso" / "coffee.jpg")  # and "espresso"
    out = tmp_path / "out"
    r = run_cli("visualize", "gradcam", tmp_path, "--truth", "folders", "--json", "-o", f"{out}/")
    assert r.exit_code == 0, r.stderr
    rows = {json.loads(line)["path"].split("/")[-1]: json.loads(line) for line in r.stdout.splitlines()}
    assert rows["cat.jpg"]["correct"] is False and rows["cat.jpg"]["true_label"] == "tabby"
    assert rows["coffee.jpg"]["correct"] is True and rows["coffee.jpg"]["label"] == "espresso"
    wrong, right = Image.open(out / "cat_gradcam.jpg"), Image.open(out / "coffee_gradcam.jpg")
    # the wrong one has the predicted class's overlay above the true class's (the photos have the
    # same 3:2 shape, so the same display size): twice the height
    assert abs(wrong.width - right.width) <= 2 and 1.9 * right.height < wrong.height < 2.1 * right.height
    r = run_cli("visualize", "gradcam", tmp_path / "tabby" / "cat.jpg", "--truth", "folders", "-o", f"{out}/",
                "--overwrite")
    assert "misclassified 1 of 1 photos with a known class" in r.stdout and "true tabby" in r.stdout
    r = run_cli("visualize", "gradcam", tmp_path, "--truth", "folders", "--target", "tabby")
    assert r.exit_code == 2 and "leave out --target" in r.stderr
