"""run_fn driven by a real TFX Trainer in a LocalDagRunner pipeline over demo phantoms
ingested by the project's ImageExampleGen; the exported SavedModel serves encoded PNG bytes."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx import v1 as tfx

from components.image_example_gen.component import ImageExampleGen
from components.lib import demo_data
from edge import spec
from trainer.summary_file import read_training_summary

SIZE = 64


@pytest.mark.slow
def test_tfx_trainer_exports_bytes_serving_attention_model(tmp_path):
    data_root = str(tmp_path / "data")
    demo_data.generate(data_root, per_class=12, size=SIZE, seed=3)
    example_gen = ImageExampleGen(input_base=data_root, class_names=spec.CLASS_NAMES)
    trainer = tfx.components.Trainer(
        run_fn="trainer.run.run_fn",
        examples=example_gen.examples,
        custom_config={"model": "attention", "image_size": SIZE, "epochs": 2,
                       "batch_size": 16, "bn_recalibration_batches": 2, "verbose": 2},
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="trainer-test",
        pipeline_root=str(tmp_path / "root"),
        components=[example_gen, trainer],
        metadata_connection_config=tfx.orchestration.metadata
        .sqlite_metadata_connection_config(str(tmp_path / "metadata.db")),
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)

    model_dirs = tf.io.gfile.glob(str(tmp_path / "root" / "Trainer" / "model" / "*"
                                      / "Format-Serving"))
    assert len(model_dirs) == 1
    model_dir = model_dirs[0]
    summary = read_training_summary(model_dir)
    assert summary["model"] == "attention"
    assert 1 <= summary["epochs"] <= 2 and len(summary["history"]) == summary["epochs"]
    # Each epoch's train steps are timed apart from its BatchNorm pass and eval scoring: a
    # part of the epoch (benchmarks/training.py compares them with a plain fit's epochs).
    elapsed = [0.0] + [entry["seconds"] for entry in summary["history"]]
    for entry, before in zip(summary["history"], elapsed, strict=False):
        assert 0.0 < entry["fit_seconds"] <= entry["seconds"] - before + 0.1
    assert set(summary["eval_per_class_f1"]) == set(spec.CLASS_NAMES)
    assert 0.0 <= summary["best_eval_macro_f1"] <= 1.0
    # Referral fitted after training and recorded: temperature, thresholds, ECE before/after.
    referral = summary["referral"]
    assert referral["ood_threshold"] == 1.0 and referral["temperature"] > 0
    assert 0.0 <= referral["refer_below"] <= 1.0
    assert {"ece_eval_before", "ece_eval_after", "eval_acceptance"} <= set(referral)

    loaded = tf.saved_model.load(model_dir)
    assert {spec.SERVING_SIGNATURE, spec.EXAMPLES_SIGNATURE, spec.TENSOR_SIGNATURE} <= set(
        loaded.signatures)
    serve = loaded.signatures[spec.SERVING_SIGNATURE]
    assert list(serve.structured_input_signature[1]) == [spec.IMAGE_BYTES_KEY]
    pixels = demo_data.render_phantom("COVID", 1, size=100, seed=9)  # not the model's size
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    outputs = serve(**{spec.IMAGE_BYTES_KEY: tf.constant([buffer.getvalue()] * 2)})
    assert outputs[spec.PROBABILITIES_KEY].shape == (2, len(spec.CLASS_NAMES))
    np.testing.assert_allclose(outputs[spec.PROBABILITIES_KEY].numpy().sum(axis=1), 1.0,
                               rtol=1e-5)
    # block2 and block3 gates: 16×16 and 8×8 at 64 px
    assert outputs["attention_1"].shape == (2, 16, 16, 1)
    assert outputs["attention_2"].shape == (2, 8, 8, 1)
    assert outputs[spec.OOD_SCORE_KEY].shape == (2,)
    assert outputs[spec.STABILITY_KEY].shape == (2,)  # the consistency check (trainer/consistency)
    assert referral["unstable_below"] == 0.0 and 0.0 <= referral["eval_unstable"] <= 1.0
    blank = io.BytesIO()
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(blank, format="PNG")
    blank_score = serve(**{spec.IMAGE_BYTES_KEY: tf.constant([blank.getvalue()])})[
        spec.OOD_SCORE_KEY].numpy()[0]
    assert blank_score > referral["ood_threshold"], blank_score  # a blank image is referred
