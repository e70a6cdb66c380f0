"""The Android export through MediaPipe's ImageClassifier (Android's twin), compared with
`edge.classifier` image by image: what tests/edge/test_android.py asserts on the golden model and
tests/pipelines/test_pipeline_e2e.py on the trained, pushed one.

Needs the android extra (.venv-edge). As a script, for a process without it:

    .venv-edge/bin/python -m tests.edge.android_check MODEL_DIR OUT_DIR [IMAGES...]

exports MODEL_DIR to OUT_DIR/cxr.tflite and prints one JSON line: the comparison on the built-in
OOD set (components/lib/ood_images.py, numpy + Pillow only) at the model's size and on IMAGES.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import spec
from edge.android import export_android, referral_path
from edge.classifier import REASON_OUT_OF_DISTRIBUTION, REASON_UNSTABLE, Classifier, Prediction

# Within this of a threshold a last-bit difference may fall either side: not compared.
NEAR_THRESHOLD = 1e-4
# The app's reason for the referral category of a model with the consistency check folded in.
REFER_CATEGORY_REASON = "out_of_distribution_or_unstable"


def expected_decision(prediction: Prediction, record: dict) -> tuple[str, str | None]:
    """cxr-edge's (status, reason) as the app can tell it: with the consistency check folded
    into the referral category, out_of_distribution and unstable are one answer there."""
    if record.get("unstable_below") is not None and prediction.reason in (
            REASON_OUT_OF_DISTRIBUTION, REASON_UNSTABLE):
        return prediction.status, REFER_CATEGORY_REASON
    return prediction.status, prediction.reason


def folded(prediction: Prediction) -> bool:
    """Whether the export scores this image as the referral category."""
    return prediction.reason in (REASON_OUT_OF_DISTRIBUTION, REASON_UNSTABLE)


def app_decision(categories, record) -> tuple[str, str | None]:
    """What the README tells an Android app to do with ImageClassifier's answer and the
    referral record written next to the model."""
    top = max(categories, key=lambda category: category.score)
    if record["refer_category"] is not None and top.category_name == record["refer_category"]:
        return "refer", "out_of_distribution" if record.get("unstable_below") is None \
            else REFER_CATEGORY_REASON
    if top.score < record["refer_below"]:
        return "refer", "low_confidence"
    return "ok", None


def rgb(gray: np.ndarray):
    """A gray image as the RGB MPImage an app hands ImageClassifier."""
    from mediapipe import Image as MpImage
    from mediapipe import ImageFormat

    return MpImage(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(np.dstack([gray] * 3)))


def image_classifier(path):
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(path)), max_results=-1
    )
    return vision.ImageClassifier.create_from_options(options)


@dataclass
class Compared:
    label: str
    expected: Prediction  # edge.classifier's
    expected_decision: tuple[str, str | None]  # expected_decision(expected, record)
    scores: dict[str, float]  # ImageClassifier's, by category name
    decision: tuple[str, str | None]  # app_decision on ImageClassifier's answer
    near_threshold: bool


def compare(classifier: Classifier, exported, images) -> list[Compared]:
    """Each (label, uint8 gray image at the model's size) through both."""
    record = json.loads(referral_path(exported).read_text())
    results = []
    with image_classifier(exported) as android:
        for label, pixels in images:
            expected = classifier.classify(pixels)
            categories = android.classify(rgb(pixels)).classifications[0].categories
            near = abs(expected.top_probability - classifier.refer_below) < NEAR_THRESHOLD
            if expected.ood_score is not None:
                near |= abs(expected.ood_score - classifier.ood_threshold) < NEAR_THRESHOLD
            if expected.stability is not None:
                near |= abs(expected.stability - classifier.unstable_below) < NEAR_THRESHOLD
            results.append(Compared(
                label, expected, expected_decision(expected, record),
                {c.category_name: c.score for c in categories},
                app_decision(categories, record), near,
            ))
    return results


def summary(results: list[Compared]) -> dict:
    """Counts for a report or an assertion: agreement on the compared images, the referral
    category on every out-of-distribution one, the largest class-score difference elsewhere."""
    compared = [r for r in results if not r.near_threshold]
    disagreements = [
        {"label": r.label, "cxr_edge": [r.expected.status, r.expected.reason],
         "android": list(r.decision)}
        for r in compared if r.decision != r.expected_decision
    ]
    ood = [r for r in compared if folded(r.expected)]
    as_category = [r for r in ood if r.scores.get(spec.ANDROID_REFER_CATEGORY) == 1.0
                   and all(v == 0.0 for k, v in r.scores.items()
                           if k != spec.ANDROID_REFER_CATEGORY)]
    differences = [
        abs(r.scores[name] - float(p))
        for r in compared if not folded(r.expected)
        for name, p in zip(r.expected.class_names, r.expected.probabilities, strict=True)
    ]
    return {
        "images": len(results),
        "compared": len(compared),
        "agree": len(compared) - len(disagreements),
        "disagreements": disagreements,
        "out_of_distribution": len(ood),
        "as_refer_category": len(as_category),
        "decisions": {f"{s}/{r}": sum((c.expected.status, c.expected.reason) == (s, r)
                                      for c in compared)
                      for s, r in {(c.expected.status, c.expected.reason) for c in compared}},
        "max_class_score_difference": max(differences, default=0.0),
    }


def main(argv: list[str]) -> int:
    from components.lib import ood_images  # numpy + Pillow only

    model_dir, out_dir, *image_paths = argv
    exported = Path(out_dir) / "cxr.tflite"
    export_android(model_dir, exported)
    classifier = Classifier.open(model_dir)
    size = classifier.input_size
    images = [(f"ood/{name}", pixels) for _, name, pixels in ood_images.generate(size)]
    for path in image_paths:
        gray = classifier.load(path)
        if gray.shape != (size, size):
            raise ValueError(f"{path} is {gray.shape}, not the model's {size} px: resize first")
        images.append((path, gray))
    print(json.dumps(summary(compare(classifier, exported, images))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
