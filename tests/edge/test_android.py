"""cxr-edge export-android: MediaPipe's ImageClassifier (Android's twin) agrees with cxr-edge,
class scores and the ok/refer decision (the referral category plus the app's low-confidence
rule from the referral record)."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from edge import cli, spec
from edge.android import LUMA_WEIGHTS, referral_path
from edge.classifier import (
    REASON_LOW_CONFIDENCE,
    REASON_OUT_OF_DISTRIBUTION,
    STATUS_OK,
    STATUS_REFER,
    Classifier,
    ClassifierOptions,
)
from edge.manifest import write_model_dir
from tests.edge.android_check import compare, summary
from tests.edge.conftest import radiograph_like
from tests.edge.golden import REFERRAL, REFERRAL_MODEL, model_path

# Golden model (tests/edge/golden.py): ood_score = mean level / 100; the top probability grows
# with the brightness difference between the left and the right half.
SIZE = 32  # the golden models' input size: no resize on either side


def test_the_rgb_to_gray_convolution_is_exact_on_gray_images():
    """A gray RGB image must reach the model as the very gray input cxr-edge feeds: float32
    (0.299, 0.587, 0.114) sum to 1 - 6e-8, which flipped an int8 model's input quantization
    (top class 0.76 -> 0.70 on a demo phantom)."""
    weights = np.asarray(LUMA_WEIGHTS, np.float32)
    levels = np.arange(256, dtype=np.float32)
    for order in ((0, 1, 2), (2, 1, 0), (1, 0, 2)):  # any accumulation order
        a, b, c = (weights[i] * levels for i in order)
        np.testing.assert_array_equal((a + b) + c, levels)
    assert abs(sum(LUMA_WEIGHTS) - 1.0) == 0.0
    assert np.allclose(LUMA_WEIGHTS, (0.299, 0.587, 0.114), atol=1e-5)  # still ITU-R 601-2


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
    referral = json.loads(referral_path(exported).read_text())  # no OOD score: no 5th category
    assert referral["categories"] == list(spec.CLASS_NAMES) and referral["refer_category"] is None

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


@pytest.mark.parametrize(
    "overrides", [{}, {"ood_threshold": 2.0, "refer_below": 0.9}], ids=["manifest", "overridden"]
)
def test_image_classifier_gives_the_referral_decision_of_cxr_edge(overrides, tmp_path, capsys):
    """The built-in OOD set and in-distribution images through MediaPipe's ImageClassifier:
    images cxr-edge refers as out of distribution come back as the referral category (score 1,
    classes 0), the others with cxr-edge's probabilities, and the app's rule on that answer
    gives cxr-edge's status and reason on every image."""
    pytest.importorskip("mediapipe")
    from components.lib import ood_images  # numpy + Pillow only, like the edge

    pushed = tmp_path / "pushed"
    write_model_dir(pushed, REFERRAL_MODEL, variant="float32", referral=REFERRAL)
    exported = tmp_path / "cxr.tflite"
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in overrides.items()]
    assert cli.main(["export-android", "--model", str(pushed), "--out", str(exported),
                     *flags]) == 0
    assert "cxr.referral.json" in capsys.readouterr().err
    record = json.loads((tmp_path / "cxr.referral.json").read_text())
    assert record["model_sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert record["categories"] == [*spec.CLASS_NAMES, spec.ANDROID_REFER_CATEGORY]
    assert record["ood_threshold"] == overrides.get("ood_threshold", REFERRAL["ood_threshold"])
    assert record["refer_below"] == overrides.get("refer_below", REFERRAL["refer_below"])
    assert record["input_size"] == SIZE

    images = [(family, pixels) for family, _, pixels in ood_images.generate(SIZE)]
    for left in (0, 40, 90, 150, 190):  # dark (in distribution for this model), sure and unsure
        for right in (0, 10, 30):
            pixels = np.full((SIZE, SIZE), right, np.uint8)
            pixels[:, : SIZE // 2] = left
            images.append(("in_distribution", pixels))
    classifier = Classifier.open(pushed, ClassifierOptions(**overrides))
    results = compare(classifier, exported, images)
    outcomes = {}
    for result in results:
        assert sorted(result.scores) == sorted(record["categories"])
        if result.near_threshold:
            continue
        expected, scores = result.expected, dict(result.scores)
        decision = (expected.status, expected.reason)
        outcomes.setdefault(decision, set()).add(result.label)
        assert result.decision == decision, result.label
        if expected.reason == REASON_OUT_OF_DISTRIBUTION:
            assert scores.pop(spec.ANDROID_REFER_CATEGORY) == 1.0
            assert set(scores.values()) == {0.0}
        else:
            assert scores.pop(spec.ANDROID_REFER_CATEGORY) == 0.0
            probabilities = dict(zip(expected.class_names, expected.probabilities.tolist(),
                                     strict=True))
            assert scores == pytest.approx(probabilities, abs=1e-5)
    counts = summary(results)
    assert counts["agree"] == counts["compared"] >= len(images) - 2
    assert counts["as_refer_category"] == counts["out_of_distribution"] > 0
    # Every outcome occurs, out-of-distribution ones among the built-in OOD set.
    assert set(outcomes) == {(STATUS_OK, None), (STATUS_REFER, REASON_LOW_CONFIDENCE),
                             (STATUS_REFER, REASON_OUT_OF_DISTRIBUTION)}
    assert outcomes[(STATUS_REFER, REASON_OUT_OF_DISTRIBUTION)] - {"in_distribution"}
    assert "in_distribution" in outcomes[(STATUS_OK, None)]


def test_a_referral_category_name_clash_is_refused(tmp_path, capsys):
    pushed = tmp_path / "pushed"
    classes = (*spec.CLASS_NAMES[:3], spec.ANDROID_REFER_CATEGORY)
    write_model_dir(pushed, REFERRAL_MODEL, variant="float32", class_names=classes)
    code = cli.main(["export-android", "--model", str(pushed), "--out", str(tmp_path / "a")])
    assert code == cli.EXIT_USAGE
    assert spec.ANDROID_REFER_CATEGORY in capsys.readouterr().err


def test_the_unstable_rule_is_folded_into_the_referral_category(tmp_path, capsys):
    """A model with the consistency check: an image cxr-edge refers as unstable comes back as
    the referral category, one it answers keeps its class scores."""
    pytest.importorskip("mediapipe")
    from tests.edge.android_check import REFER_CATEGORY_REASON
    from tests.edge.golden import CONSISTENCY_MODEL
    from tests.edge.test_consistency import spot

    pushed = tmp_path / "pushed"
    write_model_dir(pushed, CONSISTENCY_MODEL, variant="float32",
                    referral=REFERRAL | {"refer_below": 0.0, "unstable_below": 0.0})
    exported = tmp_path / "cxr.tflite"
    assert cli.main(["export-android", "--model", str(pushed), "--out", str(exported)]) == 0
    capsys.readouterr()
    record = json.loads((tmp_path / "cxr.referral.json").read_text())
    assert record["unstable_below"] == 0.0 and "unstable" in record["rule"]
    images = [("faint", spot(52, ring=28)), ("clear", spot(200)),
              ("bright", np.full((SIZE, SIZE), 200, np.uint8))]
    results = {r.label: r for r in compare(Classifier.open(pushed), exported, images)}
    assert results["faint"].expected.reason == "unstable"
    for label in ("faint", "bright"):
        assert results[label].decision == ("refer", REFER_CATEGORY_REASON) == \
            results[label].expected_decision
        assert results[label].scores[spec.ANDROID_REFER_CATEGORY] == 1.0
    clear = results["clear"]
    assert clear.decision == (STATUS_OK, None) and clear.scores[spec.ANDROID_REFER_CATEGORY] == 0
    assert clear.scores[spec.CLASS_NAMES[0]] == pytest.approx(
        float(clear.expected.probabilities[0]), abs=1e-5)


def test_a_site_calibration_travels_in_the_referral_record(tmp_path, capsys):
    """The site's screening rule and local OOD threshold reach the app; another model's
    calibration is refused."""
    pytest.importorskip("mediapipe")
    import dataclasses

    from edge.site import calibration

    pushed = tmp_path / "pushed"
    write_model_dir(pushed, REFERRAL_MODEL, variant="float32", referral=REFERRAL)
    rng = np.random.default_rng(0)
    cases = [{"probabilities": dict(zip(spec.CLASS_NAMES, p.tolist(), strict=True)),
              "label": spec.CLASS_NAMES[i % 4]}
             for i, p in enumerate(rng.dirichlet(np.ones(4), 60))]
    fitted = calibration.fit(cases, spec.CLASS_NAMES, "abnormal", {"sensitivity": 0.8},
                             model_sha256=hashlib.sha256(REFERRAL_MODEL.read_bytes()).hexdigest(),
                             precision=0.3)
    site = tmp_path / "site.json"
    calibration.save(dataclasses.replace(fitted, ood_threshold=0.5), site)
    exported = tmp_path / "cxr.tflite"
    assert cli.main(["export-android", "--model", str(pushed), "--out", str(exported),
                     "--site-calibration", str(site)]) == 0
    record = json.loads(referral_path(exported).read_text())
    assert record["screen"]["threshold"] == fitted.threshold
    assert record["screen"]["calibration_id"] == fitted.id
    assert "1 - score('Normal')" in record["screen"]["rule"]
    assert record["ood_threshold"] == 0.5  # the site's local threshold, baked in

    other = tmp_path / "other.json"
    calibration.save(dataclasses.replace(fitted, model_sha256="0" * 64), other)
    capsys.readouterr()
    assert cli.main(["export-android", "--model", str(pushed), "--out", str(exported),
                     "--site-calibration", str(other)]) == 2
    assert "recalibrate" in capsys.readouterr().err
