"""One name per setting: PipelineConfig's fields are the component configs' names, and the old
names still work, each with a warning that names the new one."""

import dataclasses

import pytest

from components.lib.shift_gate import ShiftGateConfig
from pipelines.configs import RENAMED, PipelineConfig
from trainer import config as train_config
from trainer.config import TrainConfig


def test_old_environment_variables_still_set_the_renamed_fields():
    environ = {"CXR_MIN_COVID_RECALL": "0.8", "CXR_MAX_REGRESSION": "0.02",
               "CXR_MAX_QUANTIZED_F1_DROP": "0.03"}
    with pytest.warns(FutureWarning) as warned:
        config = PipelineConfig.from_env(environ)
    assert (config.min_priority_recall, config.max_macro_f1_regression,
            config.quantization_max_f1_drop) == (0.8, 0.02, 0.03)
    messages = " ".join(str(w.message) for w in warned)
    for new in ("CXR_MIN_PRIORITY_RECALL", "CXR_MAX_MACRO_F1_REGRESSION",
                "CXR_QUANTIZATION_MAX_F1_DROP"):
        assert new in messages


def test_an_old_and_a_new_variable_together_are_an_error_naming_both():
    with pytest.raises(ValueError, match="CXR_MAX_REGRESSION.*CXR_MAX_MACRO_F1_REGRESSION"):
        PipelineConfig.from_env({"CXR_MAX_REGRESSION": "0.02",
                                 "CXR_MAX_MACRO_F1_REGRESSION": "0.01"})


def test_renamed_fields_exist_and_old_ones_are_gone():
    fields = {field.name for field in dataclasses.fields(PipelineConfig)}
    assert set(RENAMED.values()) <= fields and not set(RENAMED) & fields


def test_shift_gate_fields_are_the_gate_configs_names_and_defaults():
    config = PipelineConfig()
    for field in dataclasses.fields(ShiftGateConfig):
        if hasattr(config, "shift_gate_" + field.name):
            assert getattr(config, "shift_gate_" + field.name) == getattr(ShiftGateConfig,
                                                                         field.name)


def test_old_train_config_keys_still_work_with_a_warning():
    with pytest.warns(FutureWarning) as warned:
        config = TrainConfig.from_custom_config({"ood_acceptance": 0.98, "ood_components": 16})
    assert (config.referral_acceptance, config.referral_components) == (0.98, 16)
    messages = " ".join(str(w.message) for w in warned)
    assert "referral_acceptance" in messages and "referral_components" in messages
    with pytest.raises(ValueError, match="renamed"):
        TrainConfig.from_custom_config({"ood_acceptance": 0.98, "referral_acceptance": 0.99})
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(train_config.RENAMED.values()) <= fields and not set(train_config.RENAMED) & fields


def test_the_component_configs_get_the_same_named_settings():
    from pipelines import pipeline

    config = PipelineConfig(min_priority_recall=0.8, max_macro_f1_regression=0.02,
                            quantization_max_f1_drop=0.03, quantization_latency_margin=0.2)
    gates = pipeline.gate_config(config, ("COVID", "Normal"))
    assert (gates.min_priority_recall, gates.max_macro_f1_regression) == (0.8, 0.02)
    quantizer = pipeline.quantizer_config(config, ("COVID", "Normal"))
    assert (quantizer.max_f1_drop, quantizer.latency_margin) == (0.03, 0.2)
