"""Reading the ExampleGen's tf.Examples into arrays, augmenting, and P×K batch sampling.

Images are decoded and resized once with `preprocessing` and held in memory as float32
(4×600 images at 64 px are 39 MB; the 21k Kaggle images at 224 px about 4 GB). Training then
shuffles, augments and batches from memory, which keeps epochs cheap on two cores.
"""

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from edge import spec
from trainer import preprocessing


@dataclasses.dataclass
class Split:
    images: np.ndarray  # float32 [N, size, size, 1], 0..255
    labels: np.ndarray  # int64 [N]
    skipped: int = 0  # records whose image failed to decode

    def __len__(self) -> int:
        return len(self.labels)


def load_split(file_patterns: Sequence[str], image_size: int, num_classes: int) -> Split:
    """Reads gzipped TFRecords of tf.Examples (IMAGE_KEY PNG bytes, LABEL_KEY int64)."""
    files = _expand(file_patterns)
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {list(file_patterns)}")
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    feature_spec = {
        spec.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        spec.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, feature_spec)
        image = preprocessing.preprocess_image_bytes(example[spec.IMAGE_KEY], image_size)
        return image, example[spec.LABEL_KEY]

    total = int(records.reduce(np.int64(0), lambda count, _: count + 1).numpy())
    # A record whose image does not decode is dropped and counted, the rest go on.
    parsed = records.map(parse).ignore_errors().batch(256)
    images, labels = [], []
    for image_batch, label_batch in parsed.as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        raise ValueError(f"none of the {total} records in {files[:3]}... could be decoded")
    split = Split(np.concatenate(images), np.concatenate(labels).astype(np.int64))
    split.skipped = total - len(split)
    bad = (split.labels < 0) | (split.labels >= num_classes)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} examples carry a label outside 0..{num_classes - 1} "
            f"(e.g. {split.labels[bad][:5].tolist()}); check custom_config['class_names']"
        )
    return split


def class_weights(labels: np.ndarray, num_classes: int) -> dict:
    """Inverse-frequency weights, mean 1 over the classes present."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return {index: float(weight) for index, weight in enumerate(weights)}


def training_dataset(split: Split, batch_size: int, seed: int, shift: float, flip: bool,
                     num_classes: int) -> tf.data.Dataset:
    """Shuffled, augmented batches of (image, one-hot label) for one pass over the split."""
    dataset = tf.data.Dataset.from_tensor_slices(
        (split.images, tf.one_hot(split.labels, num_classes))
    )
    dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    augment = make_augmenter(split.images.shape[1], shift, flip, seed)
    return dataset.map(lambda x, y: (augment(x), y)).prefetch(2)


def pk_dataset(split: Split, p: int, k: int, steps: int, seed: int, shift: float,
               flip: bool) -> tf.data.Dataset:
    """Endless class-balanced batches of P classes × K images, (image, integer label)."""
    rng = np.random.default_rng(seed)

    def batches():
        while True:
            for indices in pk_batch_indices(split.labels, p, k, steps, rng):
                yield split.images[indices], split.labels[indices]

    size = split.images.shape[1]
    dataset = tf.data.Dataset.from_generator(
        batches,
        output_signature=(
            tf.TensorSpec([p * k, size, size, 1], tf.float32),
            tf.TensorSpec([p * k], tf.int64),
        ),
    )
    augment = make_augmenter(size, shift, flip, seed)
    return dataset.map(lambda x, y: (augment(x), y)).prefetch(2)


def pk_batch_indices(labels: np.ndarray, p: int, k: int, steps: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """`steps` index batches, each P distinct classes × K images of each class.

    Classes are drawn without replacement per batch; images without replacement within a
    class when it has at least K, otherwise with replacement (a triplet needs K positives).
    """
    classes = np.unique(labels)
    if len(classes) < p:
        raise ValueError(f"P={p} classes per batch but the split holds only {len(classes)}")
    members = {c: np.flatnonzero(labels == c) for c in classes}
    out = []
    for _ in range(steps):
        chosen = rng.choice(classes, size=p, replace=False)
        batch = [rng.choice(members[c], size=k, replace=len(members[c]) < k) for c in chosen]
        out.append(np.concatenate(batch))
    return out


def make_augmenter(size: int, shift: float, flip: bool, seed: int):
    """Per-image random translation (reflect-padded crop) and optional left/right flip."""
    pad = int(round(shift * size))
    generator = tf.random.Generator.from_seed(seed)

    def augment(images):
        if pad > 0:
            padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
            offsets = generator.uniform([tf.shape(images)[0], 2], 0, 2 * pad + 1, tf.int32)
            images = tf.map_fn(
                lambda args: tf.slice(args[0], [args[1][0], args[1][1], 0], [size, size, 1]),
                (padded, offsets),
                fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32),
            )
        if flip:
            mask = generator.uniform([tf.shape(images)[0], 1, 1, 1]) < 0.5
            images = tf.where(mask, tf.reverse(images, axis=[2]), images)
        return images

    return augment


def _expand(file_patterns: Sequence[str]) -> list[str]:
    if isinstance(file_patterns, str):
        file_patterns = [file_patterns]
    files: list[str] = []
    for pattern in file_patterns:
        files.extend(sorted(tf.io.gfile.glob(pattern)))
    return files


def batched(items: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]
