"""Which TFLite variant ships: the pure decision (select_variant) and its settings.

Rows carry numbers like those measured at 224 px, 1 thread (docs/decisions/latency-rounds.md):
int8 is about twice as fast as float32 and dynamic-range, dynamic-range the smallest file.
"""

import json

import pytest

from components.quantizer import QuantizerConfig, select_variant
from pipelines.configs import PipelineConfig


def _row(variant, latency_ms, size_mb, passed=True):
    return {"variant": variant, "latency_ms": latency_ms, "size_bytes": int(size_mb * 1e6),
            "passed": passed}


MEASURED = [_row("float32", 12.5, 18.1), _row("float16", 12.7, 9.1),
            _row("dynamic", 13.3, 5.0), _row("int8", 6.2, 5.4)]


def test_the_fastest_passing_variant_wins_even_when_another_is_smaller():
    choice = select_variant(MEASURED)
    assert choice["selected"] == "int8" and choice["fastest"] == "int8"
    assert choice["reason"] == ("int8 shipped: the fastest variant that passed the "
                                "Quantizer's gate, 6.20 ms median on the edge runtime at 1 "
                                "thread (next: float32 12.50 ms)")


def test_within_the_noise_margin_the_smaller_file_wins():
    rows = [_row("int8", 6.2, 5.4), _row("dynamic", 6.8, 5.0), _row("float32", 12.5, 18.1)]
    choice = select_variant(rows, margin=0.10)  # 6.8 ≤ 6.2 × 1.1 = 6.82: a tie
    assert choice["selected"] == "dynamic" and choice["fastest"] == "int8"
    assert "within the 10% noise margin of the fastest passing variant (int8, 6.20 ms" \
        in choice["reason"]
    assert "smaller (5.00 vs 5.40 MB)" in choice["reason"]
    # Just outside the margin, or with no margin, speed decides.
    assert select_variant(rows, margin=0.09)["selected"] == "int8"
    assert select_variant(rows, margin=0.0)["selected"] == "int8"


def test_a_variant_that_failed_the_gate_or_conversion_never_ships():
    rows = [_row("int8", 3.0, 5.4, passed=False),
            {"variant": "qat", "passed": False, "error": "ValueError: boom"},
            _row("float16", 12.7, 9.1), _row("float32", 12.5, 18.1)]
    choice = select_variant(rows)
    assert choice["selected"] == "float16"  # 12.7 is within 10% of 12.5 and half the size
    assert choice["excluded"] == {"int8": "failed the Quantizer's gate",
                                  "qat": "conversion failed"}
    # Why not the faster int8? The reason says.
    assert choice["reason"].endswith("; faster but excluded: int8 3.00 ms (failed the "
                                     "Quantizer's gate)")


def test_the_size_budget_excludes_larger_files_before_speed_counts():
    choice = select_variant(MEASURED, max_size_bytes=5_200_000)
    assert choice["selected"] == "dynamic"
    assert choice["excluded"]["int8"] == "5.40 MB exceeds the 5.20 MB size budget"
    assert choice["excluded"]["float32"] == "18.10 MB exceeds the 5.20 MB size budget"


def test_objective_smallest_ships_the_smallest_passing_file_and_names_the_faster_one():
    choice = select_variant(MEASURED, objective="smallest")
    assert choice["selected"] == "dynamic" and choice["fastest"] == "int8"
    assert choice["reason"].startswith("dynamic shipped: objective 'smallest', the smallest "
                                       "file that passed the Quantizer's gate (5.00 MB; the "
                                       "fastest, int8, takes 6.20 vs 13.30 ms")


def test_none_passing_or_none_within_budget_selects_nothing_and_says_why():
    failed = [{**row, "passed": False} for row in MEASURED]
    assert select_variant(failed) == {"selected": None, "fastest": None,
                                      "reason": "no variant passed the Quantizer's gate",
                                      "excluded": {r["variant"]: "failed the Quantizer's gate"
                                                   for r in MEASURED}}
    over = select_variant(MEASURED, max_size_bytes=1_000_000)
    assert over["selected"] is None
    assert over["reason"] == ("4 variant(s) passed the Quantizer's gate but none fits the 1.00 MB "
                              "size budget")


def test_an_unmeasured_latency_ranks_last_and_threads_are_named():
    rows = [_row("int8", None, 5.4), _row("float32", 12.5, 18.1)]
    choice = select_variant(rows, threads=4)
    assert choice["selected"] == "float32"
    assert "at 4 threads" in choice["reason"]
    with pytest.raises(ValueError, match="objective"):
        select_variant(rows, objective="cheapest")


def test_config_validates_the_selection_settings_and_reads_older_json():
    with pytest.raises(ValueError, match="objective"):
        QuantizerConfig(objective="cheapest")
    with pytest.raises(ValueError, match="latency_threads"):
        QuantizerConfig(latency_threads=0)
    with pytest.raises(ValueError, match="negative"):
        QuantizerConfig(latency_margin=-0.1)
    config = QuantizerConfig(objective="smallest", latency_threads=4, latency_margin=0.05,
                             max_size_mb=6.0)
    assert QuantizerConfig.from_json(config.to_json()) == config
    # A config written before these settings existed (an older cached run) still loads.
    old = json.loads(QuantizerConfig().to_json())
    for key in ("objective", "latency_margin", "max_size_mb", "latency_threads",
                "latency_warmup", "latency_rounds"):
        del old[key]
    assert QuantizerConfig.from_json(json.dumps(old)).objective == "fastest"


def test_pipeline_settings_reach_the_quantizer_from_cxr_environment_variables(tmp_path):
    from pipelines.pipeline import create_pipeline

    environ = {"CXR_QUANTIZATION_OBJECTIVE": "smallest", "CXR_QUANTIZATION_LATENCY_THREADS": "4",
               "CXR_QUANTIZATION_LATENCY_MARGIN": "0.05", "CXR_QUANTIZATION_MAX_SIZE_MB": "6.5",
               "CXR_PIPELINE_ROOT": str(tmp_path / "root"), "CXR_DATA_ROOT": str(tmp_path),
               "CXR_CLASS_NAMES": "COVID,Lung_Opacity,Normal,Viral Pneumonia"}
    config = PipelineConfig.from_env(environ)
    assert (config.quantization_objective, config.quantization_latency_threads,
            config.quantization_latency_margin, config.quantization_max_size_mb) == \
        ("smallest", 4, 0.05, 6.5)
    assert PipelineConfig().quantization_objective == "fastest"
    pipeline = create_pipeline(config)
    (quantizer,) = [c for c in pipeline.components if c.id.startswith("Quantizer")]
    built = QuantizerConfig.from_json(quantizer.exec_properties["config_json"])
    assert (built.objective, built.latency_threads, built.latency_margin,
            built.max_size_mb) == ("smallest", 4, 0.05, 6.5)


def test_every_variant_is_one_recipe_and_the_configs_name_only_known_ones():
    from components.quantizer import ALL_VARIANTS, RECIPES

    assert ALL_VARIANTS == tuple(RECIPES)
    assert all(name == recipe.name for name, recipe in RECIPES.items())
    assert set(PipelineConfig().quantization_variants) <= set(RECIPES)
    # "fastest" skips dynamic-range (never the fastest on LiteRT); "smallest" keeps it.
    assert PipelineConfig().quantization_variants == ("float32", "float16", "int8")
    assert "dynamic" in PipelineConfig(quantization_objective="smallest").quantization_variants
    assert PipelineConfig(quantization_variants=("int8",)).quantization_variants == ("int8",)
    assert set(QuantizerConfig().variants) <= set(RECIPES)
    integer = {name for name, recipe in RECIPES.items() if recipe.integer}
    assert integer == {"int8", "int8_io"}
    assert {name for name, recipe in RECIPES.items() if recipe.io_type != "float32"} == {"int8_io"}
    with pytest.raises(ValueError, match="unknown variants"):
        QuantizerConfig(variants=("float32", "int4"))
