"""Test kit for the evaluation/quantization/push/report tests: tiny data and a tiny model.

Writes a TFX-style Examples directory of synthetic grayscale PNGs whose class is easy to learn
(a bright disc in a class-specific quadrant) and trains a tiny CNN exported by the trainer's own
`trainer.export` (serving_default / serving_examples / serving_tensor). Label shuffling turns the
same recipe into a model that cannot beat chance, for the gate tests.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from edge import spec

IMAGE_SIZE = 32
CLASS_NAMES = spec.CLASS_NAMES


def synthetic_image(label: int, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """8-bit grayscale: noise plus a bright disc in the quadrant of the class."""
    image = rng.normal(70, 20, (size, size))
    quadrant_y, quadrant_x = divmod(label, 2)
    cy = (quadrant_y + 0.5) * size / 2 + rng.uniform(-2, 2)
    cx = (quadrant_x + 0.5) * size / 2 + rng.uniform(-2, 2)
    yy, xx = np.mgrid[:size, :size]
    image[(yy - cy) ** 2 + (xx - cx) ** 2 < (size / 6) ** 2] += 120
    return np.clip(image, 0, 255).astype(np.uint8)


def png_bytes(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_examples(root: str, per_class: dict[str, int] | None = None, seed: int = 0) -> str:
    """Writes Split-<name>/data.gz tfrecords like the ExampleGen; returns root."""
    import tensorflow as tf

    per_class = per_class or {"train": 30, "eval": 10, "test": 15}
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        split_dir = os.path.join(root, f"Split-{split}")
        os.makedirs(split_dir, exist_ok=True)
        path = os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for index in range(count * len(CLASS_NAMES)):
                label = index % len(CLASS_NAMES)
                gray = synthetic_image(label, rng)
                feature = {
                    spec.IMAGE_KEY: _bytes(png_bytes(gray)),
                    spec.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    spec.LABEL_NAME_KEY: _bytes(CLASS_NAMES[label].encode()),
                    spec.SOURCE_PATH_KEY: _bytes(f"{split}/{index}.png".encode()),
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
    return root


def _bytes(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def read_split(examples_root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 [N, size, size, 1] 0..255 and labels int [N] of one split."""
    from trainer.split_reader import read_split as read

    split_data = read(examples_root, split, IMAGE_SIZE)
    return split_data.images, split_data.labels


def train_tiny_model(
    examples_root: str,
    model_dir: str,
    shuffle_labels: bool = False,
    epochs: int = 12,
    seed: int = 0,
    with_attention: bool = True,
    with_embedding: bool = False,
) -> str:
    """Trains a tiny CNN and exports it under model_dir/Format-Serving; returns that path."""
    import tf_keras as keras

    from trainer import export
    from trainer.summary_file import write_training_summary

    keras.utils.set_random_seed(seed)
    images, labels = read_split(examples_root, "train")
    if shuffle_labels:
        labels = np.random.default_rng(seed).permutation(labels)
    model = _tiny_cnn(len(CLASS_NAMES), with_attention, with_embedding)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss={spec.PROBABILITIES_KEY: "sparse_categorical_crossentropy"},
    )
    history = model.fit(
        images, {spec.PROBABILITIES_KEY: labels}, epochs=epochs, batch_size=16, verbose=0
    )
    serving_dir = os.path.join(model_dir, "Format-Serving")
    # The trainer's own export: the three signatures of the device contract, not a copy of them.
    export.export_saved_model(model, IMAGE_SIZE, serving_dir)
    summary = {
        "epochs": epochs,
        "best_eval_macro_f1": None,
        "per_class_f1": {},
        "class_names": list(CLASS_NAMES),
        "image_size": IMAGE_SIZE,
        "history": {"loss": [float(v) for v in history.history["loss"]]},
    }
    write_training_summary(serving_dir, summary)
    return serving_dir


def _tiny_cnn(num_classes: int, with_attention: bool, with_embedding: bool):
    import tf_keras as keras
    from tf_keras import layers

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name=spec.IMAGE_TENSOR_KEY)
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    outputs = {}
    if with_attention:
        attention = layers.Conv2D(1, 1, activation="sigmoid", name="attention_1")(x)
        x = layers.Multiply()([x, attention])
        outputs[spec.ATTENTION_KEY_PREFIX + "1"] = attention
    # Flatten, not global pooling: the class is *where* the disc is.
    x = layers.Flatten()(layers.MaxPooling2D(4)(x))
    if with_embedding:
        outputs[spec.EMBEDDING_KEY] = layers.Dense(8, name="embedding")(x)
    outputs[spec.PROBABILITIES_KEY] = layers.Dense(
        num_classes, activation="softmax", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


def chromium_binary() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def render_in_chromium(html_path: str, screenshot_path: str, work_dir: str) -> tuple[str, str]:
    """Screenshots the page and dumps its DOM in headless Chromium; returns (dom, log)."""
    import subprocess

    binary = chromium_binary()
    url = "file://" + os.path.abspath(html_path)
    common = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={work_dir}", "--enable-logging=stderr"]
    shot = subprocess.run(
        [*common, f"--screenshot={screenshot_path}", "--window-size=1200,2400", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if shot.returncode != 0:
        raise AssertionError(f"chromium failed ({shot.returncode}): {shot.stderr[-2000:]}")
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    return dom.stdout, shot.stderr + dom.stderr


def assert_renders_cleanly(html_path: str, tmp_dir: str, expected_text: tuple[str, ...]) -> str:
    """Renders in Chromium; checks the DOM, the console log and that the screenshot is not blank."""
    screenshot = os.path.join(tmp_dir, "report.png")
    dom, log = render_in_chromium(html_path, screenshot, os.path.join(tmp_dir, "chromium-profile"))
    for text in expected_text:
        assert text in dom, f"{text!r} missing from the rendered DOM"
    console_errors = [line for line in log.splitlines() if "CONSOLE" in line and "rror" in line]
    assert not console_errors, console_errors
    pixels = np.asarray(Image.open(screenshot).convert("L"), np.float32)
    assert pixels.shape[0] > 100 and pixels.std() > 5, "the screenshot is blank"
    return screenshot
