"""Writes a split so that the same images and seed give the same files, records and order.

TFX's `WriteSplit` reshuffles before writing and lets the runner pick the shards, so under
Beam's multi-process runner every run wrote the records in a different order; the Trainer's
seeded shuffle then saw different streams and the same data and seed trained different models
(docs/decisions/seeded-split-writer.md). Here each record's place is a
seeded hash of its source path: a record goes to shard `key % shards` and each shard is written
sorted by key, so the order is pseudo-random (classes interleaved: the Trainer's bounded shuffle
buffer still sees mixed classes) and a pure function of (paths, seed).
"""

import math
import os
import uuid

import apache_beam as beam
import tensorflow as tf
from tfx.dsl.io import fileio

from components.image_example_gen import ingest

FILE_PREFIX = "data_tfrecord"  # TFX ExampleGen's names: data_tfrecord-00000-of-00004.gz
# One shard is sorted in one worker's memory: 2000 Kaggle PNGs (299 px) are about 180 MB.
RECORDS_PER_SHARD = 2000


def shard_count(expected_records: float) -> int:
    return max(1, math.ceil(expected_records / RECORDS_PER_SHARD))


def shard_of(order_key: str, shards: int) -> int:
    """The shard of a record whose `ingest.seeded_key` is `order_key` (hex)."""
    return int(order_key[:16], 16) % shards


def shard_path(folder: str, shard: int, shards: int) -> str:
    return os.path.join(folder, f"{FILE_PREFIX}-{shard:05d}-of-{shards:05d}.gz")


class WriteSeededSplit(beam.PTransform):
    """(source path, serialized tf.Example) → `shards` gzipped TFRecord files in `folder`."""

    def __init__(self, folder: str, shards: int, seed: int):
        super().__init__()
        self._folder, self._shards, self._seed = folder, shards, seed

    def expand(self, keyed_records):
        folder, shards, seed = self._folder, self._shards, self._seed
        return (
            keyed_records
            | "OrderKey" >> beam.Map(lambda item: (ingest.seeded_key(seed, item[0]), item[1]))
            | "ToShard" >> beam.Map(lambda item: (shard_of(item[0], shards), item))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.MapTuple(
                lambda shard, items: write_shard(shard_path(folder, shard, shards), items))
        )


PARTIAL = ".incomplete-"  # a shard being written: <shard file>.incomplete-<attempt id>


def write_shard(path: str, items) -> str:
    """Writes the records sorted by their order key under a name of its own attempt, then
    renames it: a retried or duplicated bundle replaces the file whole, never interleaves."""
    fileio.makedirs(os.path.dirname(path))
    partial = f"{path}{PARTIAL}{uuid.uuid4().hex}"
    with tf.io.TFRecordWriter(partial, tf.io.TFRecordOptions(compression_type="GZIP")) as out:
        for _, record in sorted(items, key=lambda item: item[0]):
            out.write(record)
    fileio.rename(partial, path, overwrite=True)
    return path


def finish_split(folder: str, shards: int) -> None:
    """After the Beam run: removes what a failed attempt left half-written (readers glob the
    folder) and gives a shard no record hashed to its empty file (the file set is fixed)."""
    for name in fileio.listdir(folder) if fileio.exists(folder) else []:
        if PARTIAL in name:
            fileio.remove(os.path.join(folder, name))
    for shard in range(shards):
        path = shard_path(folder, shard, shards)
        if not fileio.exists(path):
            write_shard(path, [])
