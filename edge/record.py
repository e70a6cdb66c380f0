"""One image's result record, the same for `cxr-edge classify` and `cxr-edge serve`.

Every key in FIELDS is always present, None (JSON null) where it does not apply (an error
record has no class, a model without an OOD head no ood_score, a station without a site
calibration no screen), so a consumer reads one schema.
Each caller adds its own keys around these (classify: path and latency; serve: filename, hashes,
model version).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edge.classifier import INFERENCE_FAILED, STATUS_ERROR, STATUS_REFER, Classifier, Prediction
from edge.imageio import ImageError, Source
from edge.site.calibration import SCREEN_FIELDS, SiteCalibration, no_screen

FIELDS = ("status", "reason", "error", "ood_score", "stability", "predicted_class",
          "probability", "probabilities", "inference_ms") + SCREEN_FIELDS


class Classified(NamedTuple):
    record: dict
    gray: np.ndarray | None  # the decoded image; None when decoding or inference failed
    prediction: Prediction | None
    failure: Exception | None  # an unexpected error (not a bad file), for the caller's log


def classify_source(classifier: Classifier, source: Source,
                    calibration: SiteCalibration | None = None) -> Classified:
    """Decodes and classifies one file; a file that fails is an error record, never a raise.

    calibration: the site's, already checked to be for this model; adds the screen decision."""
    try:
        gray = classifier.load(source)
        prediction = classifier.classify(gray)
    except ImageError as err:
        return Classified(error_record(err.reason, err.message), None, None, None)
    except Exception as err:  # whatever it is, the batch goes on; the caller logs the traceback
        return Classified(error_record(INFERENCE_FAILED, f"{type(err).__name__}: {err}"),
                          None, None, err)
    record = prediction_record(prediction)
    if calibration is not None:
        record |= calibration.screen(record["probabilities"])
    return Classified(record, gray, prediction, None)


def prediction_record(prediction: Prediction) -> dict:
    return {
        "status": prediction.status,
        "reason": prediction.reason,
        "error": None,
        "ood_score": _rounded(prediction.ood_score, 4),
        "stability": _rounded(prediction.stability, 4),
        "predicted_class": prediction.predicted_class,
        "probability": round(prediction.top_probability, 6),
        "probabilities": {
            name: round(float(p), 6)
            for name, p in zip(prediction.class_names, prediction.probabilities, strict=True)
        },
        "inference_ms": round(prediction.inference_ms, 3),
    } | no_screen()


def refused_record(reason: str, message: str) -> dict:
    """An image the model must not read (a lateral, a child): a clinician reads it unaided."""
    return dict.fromkeys(FIELDS) | {"status": STATUS_REFER, "reason": reason, "error": message}


def error_record(reason: str, error: str) -> dict:
    return dict.fromkeys(FIELDS) | {"status": STATUS_ERROR, "reason": reason, "error": error}


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
