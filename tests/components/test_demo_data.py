"""The demo phantoms: layout, determinism, finding masks, and that a linear model cannot read
the class (only the lesions' local shape gives it away)."""

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from components.image_example_gen import ingest
from components.lib import demo_data
from edge import spec
from pipelines.demo import demo_split


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


def test_mixed_sizes_are_drawn_per_image(tmp_path):
    written = demo_data.generate(str(tmp_path), per_class=12, size=32, seed=4, max_size=128,
                                 class_names=("COVID", "Normal"))
    sides = [Image.open(path).size for paths in written.values() for path in paths]
    assert all(w == h and 32 <= w <= 128 for w, h in sides)
    assert len({w for w, _ in sides}) > 10
    # Each image's side is its own draw: asking for more images does not move it.
    assert demo_data.drawn_size("COVID", 5, 32, 128, 4) == Image.open(
        written["COVID"][4]).size[0]


def test_cli_writes_the_requested_images(tmp_path, capsys):
    code = demo_data.main(["--out", str(tmp_path), "--per-class", "2", "--size", "48",
                           "--seed", "9"])

    assert code == 0
    assert len(list(tmp_path.glob("*/images/*.png"))) == 2 * len(spec.CLASS_NAMES)
    assert "SYNTHETIC" in capsys.readouterr().out


def test_unknown_class_name_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Pneumothorax"):
        demo_data.generate(tmp_path, per_class=1, class_names=("Normal", "Pneumothorax"))


def test_every_image_has_a_finding_mask_of_its_size_and_normal_has_none(tmp_path):
    written = demo_data.generate(tmp_path, per_class=3, size=64, seed=5)

    for name, paths in written.items():
        for path in paths:
            mask_path = demo_data.finding_mask_path(path)
            assert mask_path == str(tmp_path / name / "masks" / os.path.basename(path))
            with Image.open(mask_path) as image:
                assert image.mode == "L" and image.size == (64, 64)
                mask = np.asarray(image)
            assert set(np.unique(mask)) <= {0, 255}
            area = (mask > 0).mean()
            if name == "Normal":
                assert area == 0  # dense ribs are anatomy: no finding
            else:
                assert 0.02 < area < 0.3, f"{path}: finding covers {area:.1%} of the image"


def test_ingestion_reads_the_images_and_ignores_the_masks(tmp_path):
    demo_data.generate(tmp_path, per_class=2, size=64, seed=5)

    files = ingest.list_class_files(str(tmp_path), spec.CLASS_NAMES)

    assert len(files) == 2 * len(spec.CLASS_NAMES)
    assert all(f"{os.sep}images{os.sep}" in path for path, _ in files)


def test_the_finding_is_where_the_mask_says():
    # The lesion raises the local density: inside the mask the image is brighter than the
    # rest of the lungs' surroundings on average.
    for name in ("COVID", "Lung_Opacity", "Viral Pneumonia"):
        inside, outside = [], []
        for index in range(1, 21):
            pixels, mask = demo_data.render_case(name, index, size=64, seed=3)
            inside.append(pixels[mask].mean())
            ring = _dilate(mask, 4) & ~mask
            outside.append(pixels[ring].mean())
        assert np.mean(inside) > np.mean(outside) + 5, name


@pytest.fixture(scope="module")
def demo_split_features():
    """The demo's own phantoms (pipelines/demo.py sizing and seed), split as ingestion splits
    them (content hash, stratified 70/15/15 with the pipeline's seed)."""
    images, labels, _masks, split = demo_split()
    return images, labels, split


LINEAR_PROBES = {
    "pixels 8x8": lambda x: _downscaled(x, 8),
    "pixels 16x16": lambda x: _downscaled(x, 16),
    "pixels 32x32": lambda x: _downscaled(x, 32),
    "intensity histogram": lambda x: np.histogram(x, bins=64, range=(0, 256))[0],
    "mean and std": lambda x: [x.mean(), x.std()],
}


@pytest.mark.slow  # ~100 s: 2,400 train images, 1,024 features at 32x32
@pytest.mark.parametrize("probe", sorted(LINEAR_PROBES))
def test_a_linear_model_cannot_read_the_class(demo_split_features, probe):
    # The class lives in the lesions' local shape only: logistic regression, trained on the
    # demo's train split, stays near chance (0.25) on its test split.
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    images, labels, split = demo_split_features
    features = np.stack([np.asarray(LINEAR_PROBES[probe](x.astype(np.float64)), np.float64)
                         for x in images])
    train, test = split == "train", split == "test"
    assert train.sum() > 2000 and test.sum() > 400
    scores = {}
    for strength in (0.01, 0.1):  # weaker regularisation only overfits the train split
        model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=1000))
        model.fit(features[train], labels[train])
        scores[strength] = f1_score(labels[test], model.predict(features[test]),
                                    average="macro")
    print(f"linear probe on {probe}: test macro F1 "
          + ", ".join(f"{score:.3f} (C={c})" for c, score in scores.items()))
    assert max(scores.values()) <= 0.60, f"{probe}: a linear model reads the class: {scores}"


def test_a_probe_that_sees_the_finding_reads_the_class():
    # The control: the same logistic regression on the right features (ring, solid or net,
    # measured inside the ground-truth mask; none for Normal) separates the classes, so the
    # probes above fail for lack of a linear signal, not for a broken probe.
    from sklearn.linear_model import LogisticRegression

    features, labels = [], []
    for label, name in enumerate(spec.CLASS_NAMES):
        for index in range(1, 61):
            pixels, mask = demo_data.render_case(name, index, size=64, seed=13)
            features.append(_lesion_features(pixels.astype(np.float64), mask))
            labels.append(label)
    features, labels = np.asarray(features), np.asarray(labels)
    model = LogisticRegression(max_iter=1000).fit(features[::2], labels[::2])
    predicted = model.predict(features[1::2])
    assert _macro_f1(labels[1::2], predicted, len(spec.CLASS_NAMES)) > 0.8


def _downscaled(pixels, side):
    image = Image.fromarray(pixels.astype(np.uint8))
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), np.float64).ravel()


def _lesion_features(pixels, mask):
    if not mask.any():
        return [0.0, 0.0, 0.0, 0.0]
    inside = pixels[mask]
    edge = _dilate(mask, 1) & ~_erode(mask, 1)
    core = _erode(mask, 3)
    core_mean = pixels[core].mean() if core.any() else inside.mean()
    detail = np.abs(np.diff(pixels, axis=0))[mask[1:]].mean()
    return [1.0, (pixels[edge].mean() - core_mean) / 50, inside.std() / 50, detail / 50]


def _dilate(mask, steps):
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _erode(mask, steps):
    return ~_dilate(~mask, steps)


def _digests(written):
    return {os.path.basename(p): _sha(p) for paths in written.values() for p in paths}


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _macro_f1(truth, predicted, classes):
    scores = []
    for c in range(classes):
        tp = np.sum((predicted == c) & (truth == c))
        fp = np.sum((predicted == c) & (truth != c))
        fn = np.sum((predicted != c) & (truth == c))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))
