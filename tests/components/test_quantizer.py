"""Quantizer: TFLite variants scored on the edge LiteRT runner and gated on macro F1 drop."""

import json
import os
import re

import pytest

from components import quantizer
from components.quantizer import NoVariantPassed, QuantizerConfig, quantize_and_select
from tests.components import evalkit


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("quantizer"))
    examples = evalkit.write_examples(
        os.path.join(root, "examples"), {"train": 30, "eval": 2, "test": 12}
    )
    good = evalkit.train_tiny_model(examples, os.path.join(root, "good"))
    shuffled = evalkit.train_tiny_model(
        examples, os.path.join(root, "shuffled"), shuffle_labels=True
    )
    return {"examples": examples, "good": good, "shuffled": shuffled}


def test_standard_variants_are_scored_with_litert_and_the_smallest_passing_is_selected(
    models, tmp_path
):
    config = QuantizerConfig(latency_runs=3)
    table = quantize_and_select(models["good"], models["examples"], str(tmp_path), config)
    rows = {row["variant"]: row for row in table["variants"]}
    assert set(rows) == {"float32", "float16", "dynamic", "int8"}
    assert table["reference"]["macro_f1"] >= 0.9
    for row in rows.values():
        assert row["passed"], row["message"]
        assert row["runtime"].startswith("ai-edge-litert")
        assert row["latency_ms"] > 0
        assert os.path.getsize(row["file"]) == row["size_bytes"]
        assert set(row["per_class_f1"]) == set(evalkit.CLASS_NAMES)
    assert rows["int8"]["input_dtype"] == "float32"  # int8 inside, float32 I/O for the device
    assert rows["float32"]["size_bytes"] > rows["dynamic"]["size_bytes"]
    smallest = min(rows.values(), key=lambda row: row["size_bytes"])["variant"]
    assert table["selected"] == smallest
    with open(tmp_path / "variants.json") as handle:
        assert json.load(handle)["selected"] == smallest
    assert quantizer.selected_variant(str(tmp_path))["variant"] == smallest


def test_variant_that_drops_too_much_f1_is_rejected_with_the_numbers(
    models, tmp_path, monkeypatch
):
    # The "dynamic" conversion is replaced by a real TFLite model of the label-shuffled network:
    # a stand-in for a quantization that destroyed the model, scored by the same edge runner.
    real_convert = quantizer.convert

    def convert(variant, saved_model_dir, train, config):
        if variant == "dynamic":
            return real_convert("dynamic", models["shuffled"], train, config)
        return real_convert(variant, saved_model_dir, train, config)

    monkeypatch.setattr(quantizer, "convert", convert)
    config = QuantizerConfig(variants=("float32", "dynamic"), latency_runs=1)
    table = quantize_and_select(models["good"], models["examples"], str(tmp_path), config)
    rows = {row["variant"]: row for row in table["variants"]}
    rejected = rows["dynamic"]
    assert not rejected["passed"] and rejected["f1_drop"] > 0.01
    pattern = r"dynamic: macro F1 (0\.\d{3}) is (0\.\d{3}) below float (1\.000|0\.\d{3}) " \
              r"\(max drop 0\.010\): rejected"
    match = re.fullmatch(pattern, rejected["message"])
    assert match, rejected["message"]
    assert float(match.group(1)) == pytest.approx(rejected["macro_f1"], abs=5e-4)
    assert table["selected"] == "float32"  # larger, but the only one that passed


def test_no_passing_variant_fails_the_component_with_every_message(
    models, tmp_path, monkeypatch
):
    real_convert = quantizer.convert

    def convert_the_shuffled_model(variant, _saved_model_dir, train, config):
        return real_convert(variant, models["shuffled"], train, config)

    monkeypatch.setattr(quantizer, "convert", convert_the_shuffled_model)
    config = QuantizerConfig(variants=("float32",), latency_runs=1)
    with pytest.raises(NoVariantPassed, match=r"float32: macro F1 0\.\d{3} is 0\.\d{3} below"):
        quantize_and_select(models["good"], models["examples"], str(tmp_path), config)
    with open(tmp_path / "variants.json") as handle:
        assert json.load(handle)["selected"] is None


def test_int8_io_variant_has_integer_input_and_still_passes(models, tmp_path):
    config = QuantizerConfig(variants=("int8_io",), latency_runs=1)
    table = quantize_and_select(models["good"], models["examples"], str(tmp_path), config)
    row = table["variants"][0]
    assert row["input_dtype"] == "int8"
    assert row["passed"], row["message"]


@pytest.mark.slow
def test_quantization_aware_training_variant_converts_and_passes(models, tmp_path):
    config = QuantizerConfig(variants=("qat",), qat_epochs=1, latency_runs=1)
    table = quantize_and_select(models["good"], models["examples"], str(tmp_path), config)
    row = table["variants"][0]
    assert "error" not in row, row.get("error")
    assert row["passed"], row["message"]


def test_config_rejects_unknown_variants_and_round_trips_json():
    with pytest.raises(ValueError, match="unknown variants"):
        QuantizerConfig(variants=("int4",))
    with pytest.raises(ValueError, match="max_f1_drop"):
        QuantizerConfig(max_f1_drop=-0.1)
    config = QuantizerConfig(variants=("float16", "qat"), max_f1_drop=0.02)
    assert QuantizerConfig.from_json(config.to_json()) == config
