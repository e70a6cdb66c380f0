"""The one split reader: decodes as the device does, counts what it cannot decode, and samples
every class when asked (ExampleGen order may put whole classes first)."""

import os

import numpy as np
import tensorflow as tf

from edge import spec
from tests.components.evalkit import png_bytes
from trainer import split_reader


def _write_sorted_split(root, per_label=20, labels=4, corrupt=1):
    """Split-train with label 0's examples first, then label 1's…, plus corrupt images."""
    folder = os.path.join(root, "Split-train")
    os.makedirs(folder)
    with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), options="GZIP") as writer:
        for label in range(labels):
            for index in range(per_label):
                image = png_bytes(np.full((16, 16), 10 * label + index % 10, np.uint8))
                if label == 0 and index < corrupt:
                    image = image[:20]  # truncated PNG
                feature = {
                    spec.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                    spec.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    spec.SOURCE_PATH_KEY: tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[f"c{label}/{index}.png".encode()])),
                }
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    return root


def test_first_n_in_file_order_can_miss_classes_but_per_class_sampling_cannot(tmp_path):
    root = _write_sorted_split(str(tmp_path))
    first = split_reader.read_split(root, "train", 8, limit=12)
    assert set(first.labels.tolist()) == {0}  # why calibration samples per class
    assert first.skipped == 1 and first.images.shape == (12, 8, 8, 1)

    sample = split_reader.read_split(root, "train", 8, per_class=5, seed=3)
    assert np.bincount(sample.labels).tolist() == [5 - sample.skipped, 5, 5, 5]
    again = split_reader.read_split(root, "train", 8, per_class=5, seed=3)
    assert again.source_paths == sample.source_paths  # seeded: the same images
    other = split_reader.read_split(root, "train", 8, per_class=5, seed=4)
    assert other.source_paths != sample.source_paths
    # Uniform within a class, not the first five of each.
    assert any(int(path.split("/")[1][:-4]) >= 5 for path in sample.source_paths)


def test_records_and_split_names(tmp_path):
    root = _write_sorted_split(str(tmp_path), per_label=2)
    assert split_reader.split_names(root) == ["train"]
    assert sum(1 for _ in split_reader.records(root, "train")) == 8
    assert list(split_reader.records(root, "eval")) == []
