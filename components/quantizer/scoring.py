"""Model outputs on images, from the float SavedModel or a .tflite file on the edge runner, and
the classification scores both are gated on."""

import numpy as np

from edge import spec
from edge.runtime import ModelRunner
from trainer import metrics

SCORE_KEYS = (spec.OOD_SCORE_KEY, spec.STABILITY_KEY)  # per-image referral scores, [N] each


def tf_outputs(signature, images: np.ndarray, batch_size: int = 32):
    """(probabilities [N, C], ood_score [N] or None, stability [N] or None) of the float
    SavedModel."""
    import tensorflow as tf

    present = [key for key in SCORE_KEYS if key in signature.structured_outputs]
    classes = int(signature.structured_outputs[spec.PROBABILITIES_KEY].shape[-1])
    probabilities = [np.zeros((0, classes), np.float32)]
    scores = {key: [np.zeros(0, np.float32)] for key in present}
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size])
        outputs = signature(**{spec.IMAGE_TENSOR_KEY: batch})
        probabilities.append(outputs[spec.PROBABILITIES_KEY].numpy())
        for key in present:
            scores[key].append(outputs[key].numpy().reshape(-1))
    return (np.concatenate(probabilities),
            *(np.concatenate(scores[key]) if key in scores else None for key in SCORE_KEYS))


def runner_outputs(runner: ModelRunner, images: np.ndarray):
    """(probabilities [N, C], ood_score [N] or None, stability [N] or None) of a TFLite model
    on the edge runner."""
    results = [runner.run(image) for image in images]
    classes = runner.class_count
    probabilities = (np.stack([r[spec.PROBABILITIES_KEY] for r in results]) if results
                     else np.zeros((0, classes), np.float32))
    return (probabilities, *(
        np.asarray([float(np.asarray(r[key]).reshape(-1)[0]) for r in results], np.float64)
        if key in runner.outputs else None for key in SCORE_KEYS))


def classification_scores(probabilities: np.ndarray, labels: np.ndarray, class_names) -> dict:
    predictions = probabilities.argmax(axis=1)
    report = metrics.f1_report(labels, predictions, class_names)
    return {
        "macro_f1": report["macro_f1"],
        "per_class_f1": report["per_class_f1"],
        "per_class_recall": report["per_class_recall"],
        "accuracy": float((predictions == labels).mean()),
        "confusion_matrix": metrics.confusion_matrix(
            labels, predictions, len(class_names)
        ).tolist(),
    }
