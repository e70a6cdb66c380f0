"""One reader for the ExampleGen's splits, decoding images as the device does.

`Split-<name>/*.gz` holds gzipped tf.Examples (edge/spec.py keys). `records` yields them one by
one for whoever counts or checks them; `read_split` decodes their images with the edge decoder
and preprocessing (edge.imageio, edge.preprocess) into the float32 arrays the Quantizer's gate,
the report, the attention score and the benchmarks score models on. Training streams through
TFX's data accessor instead (trainer/data.py), with the TensorFlow twin of the same transform.
"""

import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from edge import spec
from edge.imageio import ImageError, load_grayscale
from edge.preprocess import to_model_input


@dataclasses.dataclass
class Split:
    """A split decoded into memory: `read_split`'s, `trainer.data.load_split`'s and the tests'.

    Its `tf.data` views (`dataset`, `class_dataset`) import TensorFlow when first asked for."""

    images: np.ndarray  # float32 [N, size, size, 1], 0..255
    labels: np.ndarray  # int64 [N]
    skipped: int = 0  # examples whose image could not be decoded
    source_paths: list[str] = dataclasses.field(default_factory=list)  # relative to data root
    encoded: list[bytes] = dataclasses.field(default_factory=list)  # only with keep_encoded
    _slices: object = dataclasses.field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def slices(self):
        """(image, label) tf.data elements; built once, so every pass shares one tensor copy."""
        import tensorflow as tf

        if self._slices is None:
            self._slices = tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        return self._slices

    def dataset(self, batch_size: int, shuffle_seed: int | None = None, repeat: bool = False):
        """tf.data batches of (float32 images, int64 labels); in split order unless
        shuffle_seed."""
        dataset = self.slices()
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(self), seed=shuffle_seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size)

    def class_dataset(self, label: int, seed: int):
        """Endless shuffled (image, label) tf.data elements of one class."""
        import tensorflow as tf

        members = self.images[self.labels == label]
        return (tf.data.Dataset.from_tensor_slices((members, tf.fill([len(members)], label)))
                .map(lambda x, y: (x, tf.cast(y, tf.int64)))
                .shuffle(len(members), seed=seed, reshuffle_each_iteration=True).repeat())

    def gather(self, indices: np.ndarray) -> np.ndarray:
        return self.images[indices]


def split_files(examples_uri: str, split: str) -> list[str]:
    """The split's TFRecord files, sorted (any filesystem TensorFlow's gfile reads)."""
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def split_names(examples_uri: str) -> list[str]:
    """The splits an Examples artifact holds (its Split-<name> folders), sorted."""
    import tensorflow as tf

    folders = tf.io.gfile.glob(os.path.join(examples_uri, "Split-*"))
    return sorted(os.path.basename(folder.rstrip("/"))[len("Split-"):] for folder in folders)


def records(examples_uri: str, split: str) -> Iterator[dict]:
    """Each example's feature map (name → tf.train.Feature), in file order."""
    import tensorflow as tf

    files = split_files(examples_uri, split)
    if not files:
        return
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        yield tf.train.Example.FromString(raw).features.feature


def first_value(features: dict, key: str, default=None):
    """The first value of a bytes or int64 feature, or default when it is absent or empty."""
    feature = features.get(key)
    if feature is None:
        return default
    values = feature.bytes_list.value or feature.int64_list.value or feature.float_list.value
    return values[0] if values else default


def read_split(examples_uri: str, split: str, image_size: int, limit: int | None = None,
               keep_encoded: bool = False, per_class: int | None = None, seed: int = 0) -> Split:
    """Decodes up to `limit` images of a split with the edge decoder, as the device will.

    With `per_class`, a seeded uniform sample of at most that many examples of each label
    instead (the files are in ExampleGen order: their first hundred may hold only some of the
    classes). An example whose image does not decode is counted in `skipped`, the rest go on."""
    examples = records(examples_uri, split)
    if per_class is not None:
        examples = _sample_per_class(examples, per_class, seed)
    images, labels, sources, encoded, skipped = [], [], [], [], 0
    for features in examples:
        if limit is not None and len(labels) >= limit:
            break
        data = first_value(features, spec.IMAGE_KEY, b"")
        try:
            gray = load_grayscale(data)
        except ImageError:
            skipped += 1
            continue
        images.append(to_model_input(gray, image_size))
        labels.append(int(first_value(features, spec.LABEL_KEY, -1)))
        sources.append(first_value(features, spec.SOURCE_PATH_KEY, b"").decode("utf-8",
                                                                               "replace"))
        if keep_encoded:
            encoded.append(data)
    shape = (0, image_size, image_size, 1)
    return Split(np.stack(images) if images else np.zeros(shape, np.float32),
                 np.asarray(labels, np.int64), skipped, sources, encoded)


def _sample_per_class(examples, per_class: int, seed: int) -> list:
    """Reservoir sampling per label: each example of a label is kept with equal chance."""
    rng = np.random.default_rng(seed)
    kept: dict[int, list] = {}
    seen: dict[int, int] = {}
    for features in examples:
        label = int(first_value(features, spec.LABEL_KEY, -1))
        seen[label] = seen.get(label, 0) + 1
        reservoir = kept.setdefault(label, [])
        if len(reservoir) < per_class:
            reservoir.append(features)
        else:
            slot = int(rng.integers(seen[label]))
            if slot < per_class:
                reservoir[slot] = features
    return [features for label in sorted(kept) for features in kept[label]]
