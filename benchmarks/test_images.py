"""The test split as the device sees it: PNG files and preprocessed float32 arrays.

Decoded by the project's one split reader (trainer.split_reader: the edge decoder and
preprocessing), as the Quantizer's gate does, so every runtime is timed and scored on identical
inputs.
"""

import os

import numpy as np

from trainer.split_reader import read_split


def prepare(examples_uri: str, image_size: int, out_dir: str, limit: int | None) -> dict:
    """Writes images.npy, labels.npy and png/*.png; returns their paths and counts."""
    os.makedirs(os.path.join(out_dir, "png"), exist_ok=True)
    test = read_split(examples_uri, "test", image_size, limit, keep_encoded=True)
    if not len(test):
        raise ValueError(f"no decodable test images in {examples_uri}")
    for index, png in enumerate(test.encoded):
        with open(os.path.join(out_dir, "png", f"test-{index:04d}.png"), "wb") as handle:
            handle.write(png)
    paths = {"images": os.path.join(out_dir, "images.npy"),
             "labels": os.path.join(out_dir, "labels.npy"),
             "png_dir": os.path.join(out_dir, "png")}
    np.save(paths["images"], test.images)
    np.save(paths["labels"], test.labels)
    return paths | {"count": len(test), "skipped": test.skipped}
