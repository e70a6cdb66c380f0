"""Evaluator + Quantizer + EdgePusher + RunReportGen in a real LocalDagRunner pipeline.

Same data, two models: one trained on shuffled labels (must not be blessed, nothing pushed) and
one trained on the true labels (blessed and pushed). Later runs show the no-regression gate
against the latest blessed model and that a rerun does not duplicate a push.
"""

import json
import os

import pytest
from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx

from components.edge_pusher import LATEST_FILE, LATEST_LINK, VERSIONS_DIR
from components.lib.evaluation import gate_outcomes
from components.quantizer import QuantizedModel
from components.report import REPORT_FILENAME, RunReport
from edge import manifest as edge_manifest
from edge import spec
from pipelines import pipeline
from pipelines.configs import PipelineConfig
from tests.components import evalkit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("gates"))
    examples = evalkit.write_examples(os.path.join(root, "examples"))
    shuffled = os.path.join(root, "model_shuffled")
    good = os.path.join(root, "model_good")
    evalkit.train_tiny_model(examples, shuffled, shuffle_labels=True)
    evalkit.train_tiny_model(examples, good)
    runs = {}
    for name, model in (("shuffled", shuffled), ("good", good), ("good_again", good),
                        ("shuffled_after_good", shuffled)):
        _run_pipeline(root, examples, model)
        runs[name] = _latest_outputs(root)
    return {"root": root, "push": os.path.join(root, "serving"), "runs": runs}


def test_label_shuffled_model_is_not_blessed_and_not_pushed(workspace):
    run = workspace["runs"]["shuffled"]
    assert run["blessed"] == 0
    outcomes = {o.metric: o for o in gate_outcomes(run["evaluation"])}
    assert not outcomes["macro_f1"].passed and outcomes["macro_f1"].value < 0.6
    assert run["pushed"] == 0
    with open(os.path.join(run["quantized"], "variants.json")) as handle:
        assert "not bless" in json.load(handle)["skipped"]
    with open(os.path.join(run["pushed_uri"], "push.json")) as handle:
        assert "did not bless" in json.load(handle)["reason"]


def test_good_model_is_blessed_and_pushed_with_a_verifiable_manifest(workspace):
    run = workspace["runs"]["good"]
    assert run["blessed"] == 1
    assert all(o.passed for o in gate_outcomes(run["evaluation"]))
    assert run["pushed"] == 1
    version_dir = run["pushed_destination"]
    with open(os.path.join(version_dir, spec.MANIFEST_FILENAME)) as handle:
        manifest = json.load(handle)
    model_file = os.path.join(version_dir, spec.MODEL_FILENAME)
    assert manifest["sha256"] == edge_manifest.file_sha256(model_file)
    assert manifest["class_names"] == list(spec.CLASS_NAMES)
    assert manifest["input_size"] == evalkit.IMAGE_SIZE
    assert manifest["pipeline_run_id"]
    assert manifest["data_fingerprint"].startswith("sha256:")
    assert manifest["synthetic_data"] is True
    assert manifest["metrics"]["evaluator"]["macro_f1"] >= 0.9
    assert {g["metric"] for g in manifest["metrics"]["gates"]} == {"macro_f1", "priority_recall"}
    assert manifest["metrics"]["variant"]["variant"] == manifest["variant"]
    with open(os.path.join(version_dir, spec.LABELS_FILENAME)) as handle:
        assert tuple(handle.read().split("\n")[:-1]) == spec.CLASS_NAMES
    loaded = edge_manifest.load_model_dir(os.path.join(workspace["push"], LATEST_LINK))
    assert loaded.class_names == spec.CLASS_NAMES


def test_rerun_of_the_same_model_passes_no_regression_and_reuses_the_push(workspace):
    first, again = workspace["runs"]["good"], workspace["runs"]["good_again"]
    outcomes = gate_outcomes(again["evaluation"])
    regression = [o for o in outcomes if o.baseline is not None]
    assert len(regression) == 1 and regression[0].passed
    assert again["blessed"] == 1 and again["pushed"] == 1
    assert again["pushed_destination"] == first["pushed_destination"]
    versions = os.listdir(os.path.join(workspace["push"], VERSIONS_DIR))
    assert len(versions) == 1
    with open(os.path.join(workspace["push"], LATEST_FILE)) as handle:
        assert handle.read().strip() == versions[0]


def test_worse_model_after_a_blessed_one_fails_the_change_threshold(workspace):
    run = workspace["runs"]["shuffled_after_good"]
    regression = [o for o in gate_outcomes(run["evaluation"]) if o.baseline is not None]
    assert len(regression) == 1 and not regression[0].passed
    assert regression[0].baseline >= 0.9
    assert "at most 0.0100 below it): FAIL" in regression[0].describe()
    assert run["blessed"] == 0 and run["pushed"] == 0
    assert len(os.listdir(os.path.join(workspace["push"], VERSIONS_DIR))) == 1


def test_run_report_renders_in_headless_chromium(workspace, tmp_path):
    if evalkit.chromium_binary() is None:
        pytest.skip("chromium is not on PATH (Debian package: chromium)")
    report = os.path.join(workspace["runs"]["good"]["report"], REPORT_FILENAME)
    screenshot = evalkit.assert_renders_cleanly(
        report, str(tmp_path),
        ("SYNTHETIC DATA", "Gates", "macro F1", "COVID recall", "Confusion matrix",
         "TFLite variants", "Attention overlays", "Training curves"),
    )
    print(f"report screenshot: {screenshot}")


def _run_pipeline(root: str, examples_dir: str, model_dir: str) -> None:
    """create_pipeline's own wiring after the Trainer, fed by importers instead of training."""
    config = PipelineConfig(
        pipeline_name="gates", pipeline_root=os.path.join(root, "pipeline"),
        serving_dir=os.path.join(root, "serving"), class_names=spec.CLASS_NAMES,
        quantization_variants=("float32", "dynamic"),
        # "smallest": the same model must select the same file on a rerun (measured latencies
        # of two near-equal variants may swap), so that the push can be reused.
        quantization_objective="smallest", synthetic_data=True,
        shift_gate_images=0)  # importers' tiny model; the battery has its own tests
    examples = tfx.dsl.Importer(
        source_uri=examples_dir,
        artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": json.dumps(list(spec.SPLITS))},
    ).with_id("examples_importer")
    model = tfx.dsl.Importer(
        source_uri=model_dir, artifact_type=tfx.types.standard_artifacts.Model
    ).with_id("model_importer")
    gated = pipeline.gated_model(config, config.models[0], config.class_names,
                                 examples.outputs["result"], model, model.outputs["result"])
    components = [examples, model, *gated.components,
                  *pipeline.delivery(config, examples.outputs["result"], [gated])]
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        metadata_connection_config=_metadata_config(root),
    ))


def _metadata_config(root: str):
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(
        os.path.join(root, "metadata.db")
    )


def _latest_outputs(root: str) -> dict:
    store = metadata_store.MetadataStore(_metadata_config(root))

    def latest(type_name):
        return max(store.get_artifacts_by_type(type_name), key=lambda a: a.id)

    def prop(item, name):
        value = item.custom_properties.get(name)
        return None if value is None else (value.string_value or value.int_value)

    blessing, pushed = latest("ModelBlessing"), latest("PushedModel")
    return {
        "blessed": prop(blessing, "blessed"),
        "evaluation": latest("ModelEvaluation").uri,
        "quantized": latest(QuantizedModel.TYPE_NAME).uri,
        "pushed": prop(pushed, "pushed"),
        "pushed_uri": pushed.uri,
        "pushed_destination": prop(pushed, "pushed_destination"),
        "report": latest(RunReport.TYPE_NAME).uri,
    }
