"""edge.runtime + edge.classifier on the golden models: every quantization flavour."""

import sys

import numpy as np
import pytest

from edge import spec
from edge.classifier import Classifier, ClassifierOptions
from edge.runtime import ModelRunner
from tests.edge.conftest import radiograph_like
from tests.edge.golden import PLAIN_MODEL, VARIANTS, expected, model_path

# Max abs difference to the Keras model's probabilities and attention values per variant.
TOLERANCE = {
    "fp32": 1e-4,
    "fp16": 2e-3,
    "dynamic": 1e-2,
    "int8": 3e-2,
    "int8_io": 3e-2,
    "uint8_io": 3e-2,
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_model_matches_keras_outputs(variant):
    golden = expected()
    classifier = Classifier.open(model_path(variant))
    assert classifier.runtime.startswith("ai-edge-litert")
    assert classifier.has_attention
    for image, probabilities, attention in zip(
        golden["inputs"], golden["probabilities"], golden["attention_1"], strict=True
    ):
        prediction = classifier.predict(image)
        assert prediction.probabilities.dtype == np.float32
        np.testing.assert_allclose(prediction.probabilities, probabilities, atol=TOLERANCE[variant])
        np.testing.assert_allclose(
            prediction.attention["attention_1"], attention[..., 0], atol=TOLERANCE[variant]
        )
        assert prediction.top_index == int(np.argmax(probabilities))


def test_integer_io_is_quantized_with_the_tensors_parameters():
    runner = ModelRunner(model_path("int8_io"))
    assert runner.input.dtype == "int8" and runner.input.quantized
    assert runner.outputs[spec.PROBABILITIES_KEY].dtype == "int8"
    unsigned = ModelRunner(model_path("uint8_io"))
    assert unsigned.input.dtype == "uint8"
    float_io = ModelRunner(model_path("int8"))
    golden = expected()["inputs"]
    for image in golden:
        reference = float_io.run(image)[spec.PROBABILITIES_KEY]
        step = runner.outputs[spec.PROBABILITIES_KEY].scale
        # Same integer graph inside; only the I/O conversion differs: within one output step.
        np.testing.assert_allclose(runner.run(image)[spec.PROBABILITIES_KEY], reference, atol=step)
        np.testing.assert_allclose(
            unsigned.run(image)[spec.PROBABILITIES_KEY], reference, atol=step
        )


def test_refer_below_marks_uncertain_images():
    gray = radiograph_like(48, 40)
    sure = Classifier.open(model_path("fp32"), ClassifierOptions(refer_below=0.0))
    prediction = sure.classify(gray)
    assert prediction.status == "ok"
    top = prediction.top_probability
    unsure = Classifier.open(model_path("fp32"), ClassifierOptions(refer_below=top + 0.01))
    assert unsure.classify(gray).status == "refer"
    assert (
        Classifier.open(model_path("fp32"), ClassifierOptions(refer_below=top - 0.01))
        .classify(gray)
        .status
        == "ok"
    )


def test_model_without_attention_and_bad_options():
    classifier = Classifier.open(PLAIN_MODEL, ClassifierOptions(threads=1))
    assert not classifier.has_attention
    prediction = classifier.classify(radiograph_like(20, 70))
    assert prediction.attention == {} and prediction.embedding is None
    assert prediction.probabilities.shape == (len(spec.CLASS_NAMES),)
    assert abs(float(prediction.probabilities.sum()) - 1.0) < 1e-5
    with pytest.raises(ValueError):
        ClassifierOptions(refer_below=1.5)
    with pytest.raises(ValueError):
        ClassifierOptions(threads=0)


def test_threads_do_not_change_results():
    image = expected()["inputs"][2]
    one = Classifier.open(model_path("int8"), ClassifierOptions(threads=1)).predict(image)
    two = Classifier.open(model_path("int8"), ClassifierOptions(threads=2)).predict(image)
    np.testing.assert_allclose(one.probabilities, two.probabilities, atol=1e-6)


def test_falls_back_to_tflite_runtime_and_says_so(monkeypatch):
    import types

    from ai_edge_litert.interpreter import Interpreter as LiteRtInterpreter

    from edge import runtime

    # Stand in for tflite-runtime with LiteRT's own class (same API), and hide LiteRT.
    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = LiteRtInterpreter
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    runner = runtime.ModelRunner(model_path("fp32"))
    assert runner.runtime.startswith("tflite-runtime")
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(runtime.RuntimeUnavailable, match="pip install ai-edge-litert"):
        runtime.ModelRunner(model_path("fp32"))
