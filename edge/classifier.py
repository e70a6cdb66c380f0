"""The edge inference core: an X-ray in, class probabilities (and attention maps) out.

`Classifier` wraps a verified model (edge.manifest.load_model_dir) with its options; the CLI
is a thin shell around it. Decoding and resizing are the shared edge.imageio and
edge.preprocess, so the device sees exactly what the trainer saw.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from edge import spec
from edge.imageio import DEFAULT_MAX_PIXELS, Source, load_grayscale
from edge.manifest import LoadedModel, load_model_dir
from edge.preprocess import to_model_input

STATUS_OK = "ok"
STATUS_REFER = "refer"  # the top probability is under refer_below: a clinician should look
STATUS_ERROR = "error"


@dataclass(frozen=True)
class ClassifierOptions:
    threads: int | None = None  # interpreter threads; None lets LiteRT choose
    refer_below: float = 0.0  # top probability under this -> status "refer"
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Ed25519 public key files (PEM): when given, only a model signed by one of them loads.
    trusted_keys: tuple[str, ...] = ()

    def __post_init__(self):
        if not 0.0 <= self.refer_below <= 1.0:
            raise ValueError(f"refer_below must be within 0..1, got {self.refer_below}")
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
        top = float(probabilities.max())
        status = STATUS_REFER if top < self.options.refer_below else STATUS_OK
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
        )
