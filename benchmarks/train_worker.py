"""Worker: a plain Keras `fit` of the Trainer's model on the Trainer's data, timed per epoch.

    python benchmarks/train_worker.py --examples EXAMPLES_URI --summary training_summary.json \
        --epochs 3

Builds the model from the config the TFX Trainer recorded (trainer.train.compiled_classifier), loads
the same train split (trainer.data.load_split), compiles it as the Trainer does (same optimizer,
loss, class weights, augmentation, batch size) and calls `fit` with no other callbacks: no
per-epoch evaluation, no BatchNorm recalibration, no export. Prints JSON.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import trainer  # noqa: F401  (Keras 2 before TensorFlow)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    import tf_keras

    from trainer import data
    from trainer.config import TrainConfig
    from trainer.train import compiled_classifier

    with open(args.summary) as handle:
        recorded = json.load(handle)["config"]
    config = TrainConfig.from_custom_config(recorded | {"epochs": args.epochs, "verbose": 0})
    started = time.perf_counter()
    train_split = data.load_split([os.path.join(args.examples, "Split-train", "*")],
                                  config.image_size, config.num_classes)
    load_s = time.perf_counter() - started

    tf_keras.utils.set_random_seed(config.seed)
    _model, classifier = compiled_classifier(config, len(train_split))
    dataset = data.training_dataset(train_split, config.batch_size, config.seed,
                                    config.augment_shift, config.augment_flip, config.num_classes)
    weights = (data.class_weights(train_split.labels, config.num_classes)
               if config.class_weighting else None)
    timer, epoch_seconds = _epoch_timer()
    started = time.perf_counter()
    classifier.fit(dataset, epochs=config.epochs, class_weight=weights, callbacks=[timer],
                   verbose=0)
    fit_s = time.perf_counter() - started
    print(json.dumps({"model": config.model, "image_size": config.image_size,
                      "batch_size": config.batch_size, "train_examples": len(train_split),
                      "epochs": config.epochs, "load_seconds": round(load_s, 2),
                      "fit_seconds": round(fit_s, 2),
                      "epoch_seconds": [round(s, 3) for s in epoch_seconds]}))
    return 0


def _epoch_timer():
    """A Keras callback recording each epoch's wall time, and the list it fills."""
    import tf_keras

    seconds, marks = [], {}
    callback = tf_keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: marks.update(start=time.perf_counter()),
        on_epoch_end=lambda epoch, logs=None: seconds.append(time.perf_counter() - marks["start"]))
    return callback, seconds


if __name__ == "__main__":
    sys.exit(main())
