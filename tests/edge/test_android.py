"""cxr-edge export-android: MediaPipe's ImageClassifier (Android's twin) agrees with cxr-edge."""

import json

import numpy as np
import pytest
from PIL import Image

from edge import cli, spec
from edge.manifest import write_model_dir
from tests.edge.conftest import radiograph_like
from tests.edge.golden import model_path


def test_int8_input_is_refused_before_mediapipe_is_needed(tmp_path, capsys):
    code = cli.main(
        ["export-android", "--model", str(model_path("int8_io")), "--out", str(tmp_path / "a")]
    )
    assert code == cli.EXIT_USAGE
    assert "float32 input tensor" in capsys.readouterr().err


@pytest.mark.parametrize("variant", ["fp32", "int8", "dynamic"])
def test_image_classifier_returns_cxr_edge_scores(variant, tmp_path, capsys):
    pytest.importorskip("mediapipe")
    from mediapipe import Image as MpImage
    from mediapipe import ImageFormat
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    pushed = tmp_path / "pushed"
    write_model_dir(pushed, model_path(variant), variant=variant)
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(3):  # already at the model's size: no resize on either side
        Image.fromarray(radiograph_like(32, 32, seed=seed)).save(images / f"{seed}.png")
    exported = tmp_path / "android.tflite"
    assert cli.main(["export-android", "--model", str(pushed), "--out", str(exported)]) == 0
    assert cli.main(["classify", "--model", str(pushed), str(images), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(exported)), max_results=len(spec.CLASS_NAMES)
    )
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for record in records:
            gray = np.array(Image.open(record["path"]))
            rgb = np.ascontiguousarray(np.dstack([gray] * 3))
            result = classifier.classify(MpImage(image_format=ImageFormat.SRGB, data=rgb))
            categories = result.classifications[0].categories
            assert categories[0].category_name == record["predicted_class"]
            for category in categories:  # labels came from the metadata
                expected = record["probabilities"][category.category_name]
                assert abs(category.score - expected) < 1e-3
