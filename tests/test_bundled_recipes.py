"""The bundled records' recipes retrain from scratch (benchmarks/train_bundled_styles.py --from-records).

A style fine-tuned from earlier weights (great_wave was, 2026-12-06 20:20-23:00 UTC) records the fine-tune's
short schedule and keeps the weights' own recipe under ``finetuned_from``: a retrain must take that full
schedule with the objective the fine-tune added to, or ``--from-records`` would train 300 steps of 4 crops
from scratch. No bundled record is a fine-tune today, so the last test writes one.
"""
import importlib.util
import json
from pathlib import Path

import pytest

from cvtools.style.records import bundled_records
from cvtools.style.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trainer_script():
    spec = importlib.util.spec_from_file_location("train_bundled_styles", ROOT / "benchmarks" / "train_bundled_styles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECORDS = {r.name: r for r in bundled_records()}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_from_records_recipe_is_a_full_training_run(trainer_script, name, tmp_path):
    recipe = trainer_script.recipe_from_record(name)
    record = RECORDS[name].recipe
    scratch = record.get("finetuned_from", record)
    # the from-scratch schedule, whichever record holds it
    for key in ("steps", "batch_size", "image_size", "lr"):
        assert recipe[key] == scratch[key], key
    # the objective is the shipped weights' own (a fine-tune's added terms included)
    assert recipe.get("objective") == record.get("objective")
    # and TrainConfig takes every key
    TrainConfig(style_image=str(tmp_path / "p.jpg"), photos=str(tmp_path), output=str(tmp_path / "o"), name=name,
                **recipe).check()


def test_great_wave_retrains_with_its_spike_term(trainer_script):
    recipe = trainer_script.recipe_from_record("great_wave")
    assert recipe["steps"] >= 500 and recipe["batch_size"] >= 32
    assert recipe["objective"]["spike_flat"] is True and recipe["objective"]["spike_weight"] > 0


def test_a_fine_tuned_record_retrains_from_its_earlier_recipe(trainer_script, monkeypatch, tmp_path):
    shipped = RECORDS["mona"].recipe
    fine_tune = dict(shipped, steps=300, batch_size=4, image_size=192, lr=3e-4,
                     objective=dict(shipped["objective"], spike_weight=0.01, spike_flat=True),
                     finetuned_from=shipped)
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "tuned.json").write_text(json.dumps({"recipe": fine_tune}))
    monkeypatch.setattr(trainer_script, "ROOT", tmp_path)
    recipe = trainer_script.recipe_from_record("tuned")
    for key in ("steps", "batch_size", "image_size", "lr"):
        assert recipe[key] == shipped[key], key
    assert recipe["objective"] == fine_tune["objective"]
