"""Reading contract-format TFRecords, class weights, P×K batches, augmentation."""

import gzip
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from edge import spec
from trainer import data


def png_bytes(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def example(image_bytes, label):
    feature = {
        spec.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        spec.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(path, records):
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for record in records:
            writer.write(record)


def test_load_split_decodes_resizes_and_counts_undecodable_images(tmp_path):
    rng = np.random.default_rng(0)
    records = [example(png_bytes(rng.integers(0, 256, (40 + i, 50))), i % 4) for i in range(5)]
    records.append(example(b"not a png", 1))
    write_records(tmp_path / "data.gz", records)
    with gzip.open(tmp_path / "data.gz") as f:  # really gzip-compressed, as ExampleGen writes
        assert f.read(1)

    split = data.load_split([str(tmp_path / "*.gz")], 32, 4)
    assert split.images.shape == (5, 32, 32, 1)
    assert split.images.dtype == np.float32
    assert 0.0 <= split.images.min() and split.images.max() <= 255.0
    assert split.labels.tolist() == [0, 1, 2, 3, 0]
    assert split.skipped == 1


def test_label_outside_class_names_is_a_clear_error(tmp_path):
    write_records(tmp_path / "data.gz", [example(png_bytes(np.zeros((8, 8))), 7)])
    with pytest.raises(ValueError, match="class_names"):
        data.load_split([str(tmp_path / "data.gz")], 32, 4)


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_split([str(tmp_path / "none-*.gz")], 32, 4)


def test_class_weights_balance_an_imbalanced_split():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    weights = data.class_weights(labels, 4)
    counts = np.bincount(labels, minlength=4)
    # Every present class contributes the same total weight; an absent one gets 0.
    totals = [weights[c] * counts[c] for c in range(3)]
    np.testing.assert_allclose(totals, totals[0])
    assert weights[3] == 0.0


def test_pk_batches_hold_p_classes_times_k_images():
    labels = np.repeat(np.arange(6), [20, 15, 9, 3, 30, 12])
    batches = data.pk_batch_indices(labels, p=4, k=5, steps=50, rng=np.random.default_rng(0))
    assert len(batches) == 50
    for indices in batches:
        batch_labels = labels[indices]
        classes, counts = np.unique(batch_labels, return_counts=True)
        assert len(indices) == 20
        assert len(classes) == 4 and (counts == 5).all()
        for c in classes:  # distinct images whenever the class has at least K
            if (labels == c).sum() >= 5:
                assert len(np.unique(indices[batch_labels == c])) == 5


def test_pk_dataset_yields_balanced_batches():
    split = data.Split(np.zeros((40, 32, 32, 1), np.float32), np.repeat(np.arange(4), 10))
    dataset = data.pk_dataset(split, p=2, k=3, steps=4, seed=0, shift=0.1, flip=True)
    for images, labels in dataset.take(6):
        assert images.shape == (6, 32, 32, 1)
        assert sorted(np.bincount(labels.numpy(), minlength=4).tolist()) == [0, 0, 3, 3]


def test_p_larger_than_number_of_classes_is_an_error():
    with pytest.raises(ValueError, match="classes"):
        data.pk_batch_indices(np.array([0, 1]), p=3, k=2, steps=1,
                              rng=np.random.default_rng(0))


def test_augmenter_shifts_each_image_independently():
    augment = data.make_augmenter(32, shift=0.25, flip=False, seed=1)
    image = np.zeros((32, 32, 1), np.float32)
    image[12:20, 12:20] = 255.0
    out = augment(tf.constant(np.stack([image] * 8))).numpy()
    assert out.shape == (8, 32, 32, 1)
    centres = {tuple(np.argwhere(o[..., 0] == 255).mean(axis=0).round(1)) for o in out}
    assert len(centres) > 1


def test_streaming_split_reads_through_the_data_accessor_like_the_in_memory_reader(tmp_path):
    rng = np.random.default_rng(1)
    split_dir = tmp_path / "Split-train"
    split_dir.mkdir()
    records = [example(png_bytes(rng.integers(0, 256, (30 + i, 40))), i % 4) for i in range(22)]
    records.insert(5, example(b"not a png", 2))
    write_records(split_dir / "data_tfrecord-00000-of-00001.gz", records)
    pattern = [str(split_dir / "*")]
    accessor = data.data_accessor(str(tmp_path))
    stream = data.stream_split(accessor.tf_dataset_factory, pattern, 32, 4, shuffle_buffer=8)
    memory = data.load_split(pattern, 32, 4)
    assert stream.labels.tolist() == memory.labels.tolist() and len(stream) == 22
    assert stream.skipped == memory.skipped == 1

    images, labels = zip(*stream.dataset(5).as_numpy_iterator(), strict=True)
    np.testing.assert_array_equal(np.concatenate(images), memory.images)  # same decoder, order
    assert [len(batch) for batch in labels] == [5, 5, 5, 5, 2]
    shuffled = stream.dataset(5, shuffle_seed=3)
    first, second = ([y for _, y in shuffled.as_numpy_iterator()] for _ in range(2))
    assert sorted(np.concatenate(first).tolist()) == sorted(memory.labels.tolist())
    assert np.concatenate(first).tolist() != np.concatenate(second).tolist()  # reshuffled
    np.testing.assert_array_equal(stream.gather(np.array([0, 7, 21])), memory.images[[0, 7, 21]])

    pk = data.pk_dataset(stream, p=2, k=3, steps=4, seed=0, shift=0.1, flip=False)
    for batch_images, batch_labels in pk.take(5):
        assert batch_images.shape == (6, 32, 32, 1)
        assert sorted(np.bincount(batch_labels.numpy(), minlength=4).tolist()) == [0, 0, 3, 3]
    weights = data.class_weights(stream.labels, 4)
    assert weights == data.class_weights(memory.labels, 4)
    batch_images, one_hot = next(iter(data.training_dataset(stream, 8, 0, 0.1, False, 4)))
    assert batch_images.shape == (8, 32, 32, 1) and one_hot.shape == (8, 4)
