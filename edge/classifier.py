"""The edge inference core: an X-ray in, class probabilities (and attention maps) out.

`Classifier` wraps a verified model (edge.manifest.load_model_dir) with its options; the CLI
is a thin shell around it. Decoding and resizing are the shared edge.imageio and
edge.preprocess, so the device sees exactly what the trainer saw.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field

import numpy as np

from edge import spec
from edge.imageio import DEFAULT_MAX_PIXELS, Source, load_grayscale
from edge.manifest import LoadedModel, file_sha256, load_model_dir
from edge.preprocess import to_model_input

STATUS_OK = "ok"
STATUS_REFER = "refer"  # the model should not be trusted on this image: a clinician should look
STATUS_ERROR = "error"
INFERENCE_FAILED = "inference_failed"  # the error reason when a decoded image fails to run
# Why an image was referred. The OOD check comes first: an image unlike the training data gets
# no class answer to lean on, however confident the softmax looks.
REASON_OUT_OF_DISTRIBUTION = "out_of_distribution"
REASON_LOW_CONFIDENCE = "low_confidence"
# A mild re-acquisition of the image (a slight blur or sharpening) changed the model's answer:
# its class evidence is at the edge of what the acquisition kept (trainer/consistency.py).
REASON_UNSTABLE = "unstable"


def decide(probabilities: np.ndarray, ood_score: float | None, ood_threshold: float,
           refer_below: float, stability: float | None = None,
           unstable_below: float = 0.0) -> tuple[str, str | None]:
    """(status, reason) of one image: the device's decision, also what the Quantizer gates.

    Out of distribution first (an image unlike the training data gets no class answer to lean
    on, however confident its softmax), then unstable, then low confidence."""
    if ood_score is not None and not ood_score <= ood_threshold:  # NaN is referred too
        return STATUS_REFER, REASON_OUT_OF_DISTRIBUTION
    if stability is not None and not stability >= unstable_below:
        return STATUS_REFER, REASON_UNSTABLE
    if float(np.max(probabilities)) < refer_below:
        return STATUS_REFER, REASON_LOW_CONFIDENCE
    return STATUS_OK, None


@dataclass(frozen=True)
class ClassifierOptions:
    threads: int | None = None  # interpreter threads; None lets LiteRT choose
    # Top probability under this -> "refer" (low_confidence). None: the manifest's referral
    # threshold (chosen on eval for a target accuracy), 0 for a model without one.
    refer_below: float | None = None
    # OOD score above this -> "refer" (out_of_distribution). None: the manifest's.
    ood_threshold: float | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Ed25519 public key files (PEM): when given, only a model signed by one of them loads.
    trusted_keys: tuple[str, ...] = ()

    def __post_init__(self):
        if self.refer_below is not None and not 0.0 <= self.refer_below <= 1.0:
            raise ValueError(f"refer_below must be within 0..1, got {self.refer_below}")
        if self.ood_threshold is not None and self.ood_threshold <= 0:
            raise ValueError(f"ood_threshold must be positive, got {self.ood_threshold}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


@dataclass
class Prediction:
    probabilities: np.ndarray  # float32 [classes], in the model's class order
    class_names: tuple[str, ...]
    status: str  # STATUS_OK or STATUS_REFER
    inference_ms: float
    attention: dict[str, np.ndarray] = field(default_factory=dict)  # key -> [h, w] in 0..1
    embedding: np.ndarray | None = None
    reason: str | None = None  # REASON_* when status is STATUS_REFER
    ood_score: float | None = None  # None for a model exported without one
    stability: float | None = None  # None for a model without the consistency check

    @property
    def top_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def predicted_class(self) -> str:
        return self.class_names[self.top_index]

    @property
    def top_probability(self) -> float:
        return float(self.probabilities[self.top_index])


class Classifier:
    """Classifies grayscale X-rays with one TFLite model."""

    def __init__(self, model: LoadedModel, options: ClassifierOptions | None = None):
        self.model = model
        self.options = options or ClassifierOptions()

    @classmethod
    def open(cls, path: str | os.PathLike, options: ClassifierOptions | None = None):
        """Loads and verifies a pushed model directory or a bare .tflite file."""
        options = options or ClassifierOptions()
        model = load_model_dir(path, threads=options.threads, trusted_keys=options.trusted_keys)
        return cls(model, options)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.class_names

    @functools.cached_property
    def model_sha256(self) -> str:
        """The model file's sha256: what a site calibration is bound to."""
        return (self.model.manifest or {}).get("sha256") or file_sha256(self.model.source)

    @property
    def referral(self) -> dict:
        """The manifest's referral record (thresholds chosen on eval), {} for a bare model."""
        return dict((self.model.manifest or {}).get("referral") or {})

    @property
    def refer_below(self) -> float:
        if self.options.refer_below is not None:
            return self.options.refer_below
        return float(self.referral.get("refer_below", 0.0))

    @property
    def ood_threshold(self) -> float:
        if self.options.ood_threshold is not None:
            return self.options.ood_threshold
        return float(self.referral.get("ood_threshold", spec.DEFAULT_OOD_THRESHOLD))

    @property
    def unstable_below(self) -> float:
        return float(self.referral.get("unstable_below", 0.0))

    @property
    def has_consistency_check(self) -> bool:
        return spec.STABILITY_KEY in self.model.runner.outputs

    @property
    def has_ood_score(self) -> bool:
        return spec.OOD_SCORE_KEY in self.model.runner.outputs

    @property
    def input_size(self) -> int:
        return self.model.input_size

    @property
    def runtime(self) -> str:
        return self.model.runner.runtime

    @property
    def has_attention(self) -> bool:
        return any(key.startswith(spec.ATTENTION_KEY_PREFIX) for key in self.model.runner.outputs)

    def load(self, source: Source) -> np.ndarray:
        """Decodes a file (or its bytes) to uint8 grayscale; raises edge.imageio.ImageError."""
        return load_grayscale(source, max_pixels=self.options.max_pixels)

    def classify(self, gray: np.ndarray) -> Prediction:
        """Classifies a decoded uint8 grayscale image of any size."""
        return self.predict(to_model_input(gray, self.input_size))

    def predict(self, model_input: np.ndarray) -> Prediction:
        """Runs the model on an already preprocessed float32 [size, size, 1] input."""
        started = time.perf_counter()
        outputs = self.model.runner.run(model_input)
        elapsed_ms = (time.perf_counter() - started) * 1000
        probabilities = outputs[spec.PROBABILITIES_KEY].astype(np.float32)
        ood = outputs.get(spec.OOD_SCORE_KEY)
        ood = None if ood is None else float(np.asarray(ood).reshape(-1)[0])
        stability = outputs.get(spec.STABILITY_KEY)
        stability = None if stability is None else float(np.asarray(stability).reshape(-1)[0])
        status, reason = decide(probabilities, ood, self.ood_threshold, self.refer_below,
                                stability, self.unstable_below)
        attention = {
            key: value.reshape(value.shape[0], value.shape[1])
            for key, value in sorted(outputs.items())
            if key.startswith(spec.ATTENTION_KEY_PREFIX)
        }
        return Prediction(
            probabilities=probabilities,
            class_names=self.class_names,
            status=status,
            inference_ms=elapsed_ms,
            attention=attention,
            embedding=outputs.get(spec.EMBEDDING_KEY),
            reason=reason,
            ood_score=ood,
            stability=stability,
        )
