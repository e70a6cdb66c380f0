"""The train/eval splits as `tf.data` pipelines, class weights, P×K batches, augmentation.

The Trainer streams: `stream_split` reads a split through TFX's data accessor
(`fn_args.data_accessor.tf_dataset_factory`, a TFXIO over the ExampleGen's gzipped
tf.Examples) and every pass over it (training epochs, BatchNorm recalibration, eval scoring,
the referral fit) decodes and resizes records as they stream: serialized records go through
a bounded shuffle buffer (`TrainConfig.shuffle_buffer` records), are decoded with
`preprocessing.preprocess_image_bytes` in parallel, batched, augmented and prefetched. What a
split keeps in memory is one int64 label per decodable record (read once, by `stream_split`),
so memory does not grow with the number of images (benchmarks: the streaming topic).

`load_split` decodes a whole split into float32 arrays (4×600 images at 64 px are 39 MB; the
21k Kaggle images at 224 px about 4 GB): for small splits (tests, the Quantizer's calibration
and gate sets, benchmarks) and as the in-memory reference the streaming benchmark compares
with. Both kinds of split offer the same interface (`labels`, `skipped`, `len`, `dataset`,
`class_dataset`, `gather`), so training takes either.
"""

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from edge import spec
from trainer import preprocessing
from trainer.acquisition import AcquisitionConfig, make_acquisition_augmenter
from trainer.split_reader import Split  # the one in-memory split (also trainer.data.Split)

READ_BATCH = 64  # records per batch the data accessor reads before they are un-batched
DEFAULT_SHUFFLE_BUFFER = 2048


@dataclasses.dataclass
class StreamingSplit:
    """A split read through TFX's data accessor each time it is iterated; never held decoded.

    `labels` are the labels of the records whose image decodes, in the split's order (the
    order `dataset()` yields without a shuffle seed)."""

    file_patterns: list[str]
    image_size: int
    factory: Callable  # DataAccessor.tf_dataset_factory
    labels: np.ndarray
    skipped: int = 0
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER

    def __len__(self) -> int:
        return len(self.labels)

    def records(self, shuffle_seed: int | None = None, repeat: bool = False,
                label: int | None = None) -> tf.data.Dataset:
        """(encoded image, label) scalars, optionally of one class, shuffled in a bounded
        buffer of serialized records (cheap: PNG bytes, not decoded pixels)."""
        dataset = self.factory(self.file_patterns, _read_options(), _schema()).unbatch()
        dataset = dataset.map(
            lambda features: (features[spec.IMAGE_KEY][0], features[spec.LABEL_KEY][0]))
        if label is not None:
            dataset = dataset.filter(lambda image, y: tf.equal(y, label))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(self.shuffle_buffer, seed=shuffle_seed,
                                      reshuffle_each_iteration=True)
        return dataset.repeat() if repeat else dataset

    def dataset(self, batch_size: int, shuffle_seed: int | None = None,
                repeat: bool = False) -> tf.data.Dataset:
        """Batches of (float32 images, int64 labels), decoded as they stream."""
        return (_decoded(self.records(shuffle_seed, repeat), self.image_size)
                .batch(batch_size).prefetch(tf.data.AUTOTUNE))

    def class_dataset(self, label: int, seed: int) -> tf.data.Dataset:
        """Endless shuffled (image, label) elements of one class, decoded as they stream."""
        return _decoded(self.records(seed, repeat=True, label=label), self.image_size)

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """The decoded images at `indices` (a bounded set: a sample, references)."""
        wanted = np.zeros(len(self), bool)
        wanted[np.asarray(indices, np.int64)] = True
        keep = tf.constant(wanted)
        chosen = (_decoded(self.records(), self.image_size).enumerate()
                  .filter(lambda index, element: keep[index])
                  .map(lambda index, element: element[0]).batch(256))
        out = [batch.numpy() for batch in chosen]
        size = self.image_size
        return np.concatenate(out) if out else np.zeros((0, size, size, 1), np.float32)


SplitLike = Split | StreamingSplit  # what training, eval scoring and the referral fit take


def stream_split(tf_dataset_factory: Callable, file_patterns: Sequence[str], image_size: int,
                 num_classes: int, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
                 ) -> StreamingSplit:
    """The split read through `tf_dataset_factory` (fn_args.data_accessor's); one pass over
    it here reads the labels of the records whose image decodes and counts the others."""
    split = _stream(tf_dataset_factory, file_patterns, image_size, shuffle_buffer)
    total = int(split.records().reduce(np.int64(0), lambda count, _: count + 1).numpy())
    # Decoding (not resizing) is what tells a readable image: one epoch's decode, once.
    decoded = split.records().map(
        lambda image, y: (tf.shape(preprocessing.decode_gray(image))[0], y),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    labels = list(decoded.map(lambda _, y: y).batch(4096).as_numpy_iterator())
    split.labels = (np.concatenate(labels) if labels else np.zeros(0, np.int64)).astype(np.int64)
    split.skipped = total - len(split.labels)
    if not len(split.labels):
        raise ValueError(f"none of the {total} records in {split.file_patterns[:3]}... "
                         "could be decoded")
    _check_labels(split.labels, num_classes)
    return split


def data_accessor(examples_uri: str):
    """TFX's DataAccessor for an ExampleGen output directory (Split-<name>/ folders), built
    the way the Trainer executor builds fn_args.data_accessor: for tests and benchmarks."""
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = '["train", "eval", "test"]'
    telemetry = ["Trainer"]
    return fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
            [examples], telemetry),
        record_batch_factory=tfxio_utils.get_record_batch_factory_from_artifact(
            [examples], telemetry),
        data_view_decode_fn=None)


def _accessor_factory() -> Callable:
    """The data accessor's tf.Dataset factory for tf.Example TFRecords (the ExampleGen's
    payload format); it reads the file patterns it is given."""
    global _FACTORY
    if _FACTORY is None:
        _FACTORY = data_accessor("").tf_dataset_factory
    return _FACTORY


_FACTORY = None


def load_split(file_patterns: Sequence[str], image_size: int, num_classes: int) -> Split:
    """Reads gzipped TFRecords of tf.Examples (IMAGE_KEY PNG bytes, LABEL_KEY int64) into
    memory (small splits; the Trainer streams, see `stream_split`)."""
    stream = _stream(_accessor_factory(), file_patterns, image_size)
    total = int(stream.records().reduce(np.int64(0), lambda count, _: count + 1).numpy())
    # A record whose image does not decode is dropped and counted, the rest go on.
    images, labels = [], []
    for image_batch, label_batch in stream.dataset(256).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        raise ValueError(f"none of the {total} records in {stream.file_patterns[:3]}... "
                         "could be decoded")
    split = Split(np.concatenate(images), np.concatenate(labels).astype(np.int64))
    split.skipped = total - len(split)
    _check_labels(split.labels, num_classes)
    return split


def class_weights(labels: np.ndarray, num_classes: int) -> dict:
    """Inverse-frequency weights, mean 1 over the classes present."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return {index: float(weight) for index, weight in enumerate(weights)}


def training_dataset(split, batch_size: int, seed: int, shift: float, flip: bool,
                     num_classes: int, acquisition: float = 0.0) -> tf.data.Dataset:
    """Shuffled, augmented batches of (image, one-hot label) for one pass over the split
    (a Split or a StreamingSplit). Under several workers each builds the same seeded dataset
    and keeps its share of each global batch (DATA sharding: any number of files works)."""
    dataset = split.dataset(batch_size, shuffle_seed=seed)
    augment = make_augmenter(split.image_size, shift, flip, seed, acquisition)
    dataset = dataset.map(lambda x, y: (augment(x), tf.one_hot(y, num_classes)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(2).with_options(options)


def pk_dataset(split, p: int, k: int, steps: int, seed: int, shift: float,
               flip: bool, acquisition: float = 0.0) -> tf.data.Dataset:
    """Endless class-balanced batches of P classes × K images, (image, integer label).

    One endless shuffled stream per class (`split.class_dataset`); a seeded schedule picks
    P classes per batch (`pk_batch_indices`' rule) and `choose_from_datasets` takes K images
    from each, so only the images a batch uses are decoded."""
    classes = np.unique(split.labels)
    if len(classes) < p:
        raise ValueError(f"P={p} classes per batch but the split holds only {len(classes)}")
    rng = np.random.default_rng(seed)

    def schedule():
        while True:
            for _ in range(max(1, steps)):
                for position in rng.choice(len(classes), size=p, replace=False):
                    yield from [position] * k

    streams = [split.class_dataset(int(c), seed + int(c)) for c in classes]
    choice = tf.data.Dataset.from_generator(schedule,
                                            output_signature=tf.TensorSpec([], tf.int64))
    dataset = tf.data.Dataset.choose_from_datasets(streams, choice).batch(p * k)
    augment = make_augmenter(split.image_size, shift, flip, seed, acquisition)
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


def make_augmenter(size: int, shift: float, flip: bool, seed: int,
                   acquisition: float | AcquisitionConfig = 0.0):
    """Per-image acquisition changes (trainer/acquisition.py: a config, or the default ranges
    each with probability `acquisition`; 0: none), random translation (reflect-padded crop),
    optional left/right flip."""
    pad = int(round(shift * size))
    generator = tf.random.Generator.from_seed(seed)
    if not isinstance(acquisition, AcquisitionConfig):
        acquisition = AcquisitionConfig(float(acquisition))
    reacquire = (make_acquisition_augmenter(size, seed, acquisition)
                 if acquisition.probability > 0 else None)

    def augment(images):
        if reacquire is not None:
            images = reacquire(images)
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


def _stream(factory: Callable, file_patterns: Sequence[str], image_size: int,
            shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> StreamingSplit:
    if isinstance(file_patterns, str):
        file_patterns = [file_patterns]
    files = _expand(file_patterns)
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {list(file_patterns)}")
    return StreamingSplit(list(file_patterns), image_size, factory, np.zeros(0, np.int64),
                          shuffle_buffer=shuffle_buffer)


def _decoded(records: tf.data.Dataset, image_size: int) -> tf.data.Dataset:
    """(encoded image, label) → (float32 [size, size, 1], label); undecodable records dropped,
    order kept (the labels read by stream_split line up with an unshuffled pass)."""
    return records.map(
        lambda image, label: (preprocessing.preprocess_image_bytes(image, image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()


def _read_options():
    from tfx_bsl.public.tfxio import TensorFlowDatasetOptions

    # Unshuffled reads in file order; shuffling happens on the un-batched records.
    return TensorFlowDatasetOptions(batch_size=READ_BATCH, shuffle=False, num_epochs=1)


def _schema():
    """The two features training reads (the ExampleGen writes more; the rest are skipped)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name, kind in ((spec.IMAGE_KEY, schema_pb2.BYTES), (spec.LABEL_KEY, schema_pb2.INT)):
        feature = schema.feature.add(name=name, type=kind)
        feature.shape.dim.add(size=1)
        feature.presence.min_fraction = 1.0
    return schema


def _check_labels(labels: np.ndarray, num_classes: int) -> None:
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} examples carry a label outside 0..{num_classes - 1} "
            f"(e.g. {labels[bad][:5].tolist()}); check custom_config['class_names']"
        )
