"""The demo phantoms: layout, determinism, and that only the finding gives the class away."""

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from components import demo_data
from edge import spec


def test_writes_kaggle_layout_with_expected_counts_and_format(tmp_path):
    written = demo_data.generate(tmp_path, per_class=3, size=64, seed=5)

    assert sorted(written) == sorted(spec.CLASS_NAMES)
    for name in spec.CLASS_NAMES:
        files = sorted(os.listdir(tmp_path / name / "images"))
        assert files == sorted(f"{name}-{i}.png" for i in (1, 2, 3))
        with Image.open(tmp_path / name / "images" / f"{name}-1.png") as image:
            assert image.format == "PNG"
            assert image.mode == "L"
            assert image.size == (64, 64)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    first = _digests(demo_data.generate(tmp_path / "a", per_class=2, size=64, seed=1))
    again = _digests(demo_data.generate(tmp_path / "b", per_class=2, size=64, seed=1))
    other = _digests(demo_data.generate(tmp_path / "c", per_class=2, size=64, seed=2))

    assert first == again
    assert not set(first.values()) & set(other.values())
    assert len(set(first.values())) == len(first)  # no two phantoms alike


def test_an_image_does_not_depend_on_how_many_were_asked_for(tmp_path):
    small = demo_data.generate(tmp_path / "small", per_class=1, size=64, seed=3)
    large = demo_data.generate(tmp_path / "large", per_class=4, size=64, seed=3)

    for name in spec.CLASS_NAMES:
        assert _sha(small[name][0]) == _sha(large[name][0])


def test_cli_writes_the_requested_images(tmp_path, capsys):
    code = demo_data.main(["--out", str(tmp_path), "--per-class", "2", "--size", "48",
                           "--seed", "9"])

    assert code == 0
    assert len(list(tmp_path.glob("*/images/*.png"))) == 2 * len(spec.CLASS_NAMES)
    assert "SYNTHETIC" in capsys.readouterr().out


def test_unknown_class_name_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Pneumothorax"):
        demo_data.generate(tmp_path, per_class=1, class_names=("Normal", "Pneumothorax"))


def test_global_brightness_and_contrast_do_not_give_the_class_away():
    features, labels = _dataset(per_class=80, feature=lambda x: [x.mean(), x.std()])

    score = _softmax_regression_f1(features, labels)

    assert score < 0.4, f"mean/std alone predict the class: macro F1 {score:.2f}"


def test_findings_are_visible_to_a_linear_model_on_pixels():
    # A weak learner on 32 px pixels must find the signal the mean/std model cannot.
    features, labels = _dataset(per_class=80, feature=_standardised_32px)

    score = _softmax_regression_f1(features, labels)

    assert score > 0.6, f"findings too subtle for a linear model: macro F1 {score:.2f}"


def _digests(written):
    return {os.path.basename(p): _sha(p) for paths in written.values() for p in paths}


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _dataset(per_class, feature):
    features, labels = [], []
    for label, name in enumerate(spec.CLASS_NAMES):
        for index in range(1, per_class + 1):
            pixels = demo_data.render_phantom(name, index, size=64, seed=11)
            features.append(feature(pixels.astype(np.float64)))
            labels.append(label)
    return np.asarray(features, dtype=np.float64), np.asarray(labels)


def _standardised_32px(pixels):
    small = pixels.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    return ((small - small.mean()) / small.std()).ravel()


def _softmax_regression_f1(features, labels, steps=300, learning_rate=0.5, l2=1e-3):
    """Fits multinomial logistic regression on 3/4 of the data; macro F1 on the rest."""
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[: len(order) * 3 // 4], order[len(order) * 3 // 4:]
    center, scale = features[train].mean(0), features[train].std(0) + 1e-9
    x = (features - center) / scale
    classes = labels.max() + 1
    onehot = np.eye(classes)[labels[train]]
    weights = np.zeros((x.shape[1], classes))
    bias = np.zeros(classes)
    for _ in range(steps):
        logits = x[train] @ weights + bias
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        error = (probs - onehot) / len(train)
        weights -= learning_rate * (x[train].T @ error + l2 * weights)
        bias -= learning_rate * error.sum(0)
    predicted = (x[test] @ weights + bias).argmax(1)
    return _macro_f1(labels[test], predicted, classes)


def _macro_f1(truth, predicted, classes):
    scores = []
    for c in range(classes):
        tp = np.sum((predicted == c) & (truth == c))
        fp = np.sum((predicted == c) & (truth != c))
        fn = np.sum((predicted != c) & (truth == c))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))
