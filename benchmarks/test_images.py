"""The test split as the device sees it: PNG files and preprocessed float32 arrays.

Decoded with the edge decoder and preprocessing (edge.imageio, edge.preprocess), as the
Quantizer's gate does, so every runtime is timed and scored on identical inputs.
"""

import os

import numpy as np

from edge import spec
from edge.imageio import ImageError, load_grayscale
from edge.preprocess import to_model_input


def prepare(examples_uri: str, image_size: int, out_dir: str, limit: int | None) -> dict:
    """Writes images.npy, labels.npy and png/*.png; returns their paths and counts."""
    import tensorflow as tf

    os.makedirs(os.path.join(out_dir, "png"), exist_ok=True)
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, "Split-test", "*")))
    images, labels, skipped = [], [], 0
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        if limit is not None and len(labels) >= limit:
            break
        features = tf.train.Example.FromString(record.numpy()).features.feature
        png = features[spec.IMAGE_KEY].bytes_list.value[0]
        try:
            gray = load_grayscale(png)
        except ImageError:
            skipped += 1
            continue
        name = os.path.join(out_dir, "png", f"test-{len(labels):04d}.png")
        with open(name, "wb") as handle:
            handle.write(png)
        images.append(to_model_input(gray, image_size))
        labels.append(features[spec.LABEL_KEY].int64_list.value[0])
    if not labels:
        raise ValueError(f"no decodable test images in {examples_uri}")
    paths = {"images": os.path.join(out_dir, "images.npy"),
             "labels": os.path.join(out_dir, "labels.npy"),
             "png_dir": os.path.join(out_dir, "png")}
    np.save(paths["images"], np.stack(images).astype(np.float32))
    np.save(paths["labels"], np.asarray(labels, np.int64))
    return paths | {"count": len(labels), "skipped": skipped}
