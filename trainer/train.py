"""Training: classifiers with cross-entropy, the Siamese net with a triplet loss.

The recipe (from scratch on CPU; docs/training.md): per-image standardisation in the model,
BatchNorm momentum 0.9 and a "precise BN" recalibration on training batches before every evaluation,
AdamW with decoupled weight decay, label smoothing, one warmup epoch then cosine decay,
inverse-frequency class weights. After each epoch the eval split is scored with the shared
`metrics.macro_f1`; the best epoch's weights are kept and training stops early when the score
has not improved for `early_stopping_patience` epochs. The test split is never looked at here.

Under several workers (trainer/distribution.py) the classifiers train under
MultiWorkerMirroredStrategy with the same code: the model is built and compiled in the
strategy's scope, every worker runs the per-epoch callback in lockstep (its BatchNorm
recalibration and eval scoring read all-reduced variables), and the decisions it takes (best
epoch, early stop, time budget) use the chief's numbers so that all workers stop together.
The returned model is a plain local copy, so what follows training (referral fit, export) runs
on the chief alone.
"""

import dataclasses
import math
import os
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras
from tf_keras import layers

from edge import spec
from trainer import data, distribution, metrics
from trainer.config import TrainConfig
from trainer.models import build_model, build_model_and_auxiliary_heads, siamese
from trainer.tfa_compat import tfa


@dataclasses.dataclass
class TrainResult:
    model: tf_keras.Model  # the export model: image → dict of outputs
    summary: dict[str, object]  # JSON-ready: epochs, best eval macro F1, per-class F1, history


def train(config: TrainConfig, train_split: data.SplitLike, eval_split: data.SplitLike,
          plot_split: data.SplitLike | None = None, plot_dir: str | None = None,
          strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    """Trains the configured model; returns it with the best eval-F1 weights restored.

    strategy: distribution.strategy_from_environment() (the default: one machine)."""
    strategy = strategy or tf.distribute.get_strategy()
    multi_worker = distribution.is_multi_worker(strategy)
    if multi_worker and config.model == "siamese":
        raise ValueError(
            "multi-worker training (TF_CONFIG names several workers) supports the baseline and "
            "attention models, not siamese: its triplet loss mines negatives within a batch, "
            "which each step would split across workers, and its class-balanced batches come "
            "from a Python generator; train the Siamese model on one machine")
    tf_keras.utils.set_random_seed(config.seed)
    started = time.monotonic()
    if config.model == "siamese":
        result = _train_siamese(config, train_split, eval_split, plot_split, plot_dir)
    else:
        result = _train_classifier(config, train_split, eval_split, strategy)
    if multi_worker:
        result.model = _local_copy(result.model, config)
    result.summary["replicas_in_sync"] = strategy.num_replicas_in_sync
    result.summary["train_seconds"] = round(time.monotonic() - started, 1)
    result.summary["train_examples"] = len(train_split)
    result.summary["eval_examples"] = len(eval_split)
    result.summary["skipped_examples"] = {"train": train_split.skipped, "eval": eval_split.skipped}
    result.summary["config"] = dataclasses.asdict(config)
    return result


def _train_classifier(config: TrainConfig, train_split: data.SplitLike,
                      eval_split: data.SplitLike, strategy: tf.distribute.Strategy) -> TrainResult:
    with strategy.scope():  # the default strategy's scope on one machine: no change
        model, classifier = compiled_classifier(config, len(train_split))
        exported_head = tf_keras.Model(model.input, model.output[spec.PROBABILITIES_KEY])

    def predict_eval_labels():
        probabilities = exported_head.predict(_images_only(eval_split, 64), verbose=0)
        return probabilities.argmax(axis=1)

    selector = EvalMacroF1Selector(config, classifier, train_split, eval_split,
                                   predict_eval_labels, strategy)
    # Each worker builds the same seeded dataset; Keras shards each global batch across them.
    dataset = data.training_dataset(train_split, config.batch_size, config.seed,
                                    config.augment_shift, config.augment_flip, config.num_classes,
                                    config.augment_acquisition)
    weights = (data.class_weights(train_split.labels, config.num_classes)
               if config.class_weighting else None)
    classifier.fit(dataset, epochs=config.epochs, class_weight=weights,
                   callbacks=[selector], verbose=config.verbose)
    return TrainResult(model, selector.summary())


def _local_copy(model: tf_keras.Model, config: TrainConfig) -> tf_keras.Model:
    """The trained model rebuilt outside the strategy, holding the same weights.

    A distributed model's predict and save run collectives that every worker must join; the
    copy lets the chief fit the referral and export alone. get_weights reads all-reduced
    BatchNorm statistics, so every worker calls this, once, right after training."""
    weights = model.get_weights()
    copy = build_model(config)
    copy.set_weights(weights)
    return copy


def _train_siamese(config: TrainConfig, train_split: data.SplitLike,
                   eval_split: data.SplitLike, plot_split: data.SplitLike | None,
                   plot_dir: str | None) -> TrainResult:
    embedding_model = siamese.build_embedding_model(config)
    embedder = tf_keras.Model(embedding_model.input, embedding_model.output[spec.EMBEDDING_KEY])
    plots = {}
    if plot_dir and plot_split is not None and config.embedding_plots:
        plots["before"] = _plot(embedder, plot_split, config, plot_dir, "before")

    batch = config.pk_classes * config.pk_images
    steps = config.steps_per_epoch or max(1, math.ceil(len(train_split) / batch))
    embedder.compile(
        optimizer=make_optimizer(config, steps),
        loss=tfa.losses.TripletSemiHardLoss(margin=config.triplet_margin),
    )
    # During training, score eval by nearest prototype over a bounded sample of train images.
    sample = siamese.bounded_reference_set(train_split.labels, 64, config.seed)

    sample_images = train_split.gather(sample)  # a bounded set, decoded once

    def predict_eval_labels():
        reference = embed(embedder, sample_images)
        prototypes = siamese.class_prototypes(reference, train_split.labels[sample],
                                              config.num_classes)
        return (embed(embedder, eval_split) @ prototypes.T).argmax(axis=1)

    selector = EvalMacroF1Selector(config, embedder, train_split, eval_split,
                                   predict_eval_labels)
    dataset = data.pk_dataset(train_split, config.pk_classes, config.pk_images, steps,
                              config.seed, config.augment_shift, config.augment_flip,
                              config.augment_acquisition)
    embedder.fit(dataset, epochs=config.epochs, steps_per_epoch=steps, callbacks=[selector],
                 verbose=config.verbose)

    classifier, choice = choose_siamese_classifier(config, embedder, train_split, eval_split)
    summary = selector.summary()
    summary["siamese_classifier"] = choice
    if plots:
        plots["after"] = _plot(embedder, plot_split, config, plot_dir, "after")
        summary["embedding_plots"] = plots
    return TrainResult(siamese.with_classifier(embedding_model, classifier), summary)


def choose_siamese_classifier(config: TrainConfig, embedder: tf_keras.Model,
                              train_split: data.SplitLike, eval_split: data.SplitLike):
    """Builds the prototype and the bounded-kNN classifier, scores both on eval, keeps one."""
    # Embeddings (embedding_dims floats an image), not images, are held for the whole split.
    train_embeddings = embed(embedder, train_split)
    eval_embeddings = embed(embedder, eval_split)
    reference = siamese.bounded_reference_set(
        train_split.labels, config.knn_reference_per_class, config.seed
    )
    candidates = {
        "prototype": siamese.PrototypeClassifier(
            siamese.class_prototypes(train_embeddings, train_split.labels, config.num_classes),
            config.prototype_temperature, name="prototype_classifier",
        ),
        "knn": siamese.KnnClassifier(
            train_embeddings[reference], train_split.labels[reference], config.num_classes,
            config.knn_k, config.prototype_temperature, name="knn_classifier",
        ),
    }
    scores = {}
    for name, layer in candidates.items():
        predicted = layer(tf.constant(eval_embeddings)).numpy().argmax(axis=1)
        scores[name] = metrics.macro_f1(eval_split.labels, predicted, config.num_classes)
    if config.siamese_classifier == "auto":
        # Ties go to prototypes: C vectors instead of C×R, and no top-k op on the device.
        chosen = "prototype" if scores["prototype"] >= scores["knn"] else "knn"
    else:
        chosen = config.siamese_classifier
    print(f"Siamese classifier on eval: prototype macro F1 {scores['prototype']:.3f}, "
          f"kNN (k={config.knn_k}, {len(reference)} references) {scores['knn']:.3f} "
          f"→ {chosen}")
    choice = {"chosen": chosen, "eval_macro_f1": scores, "knn_references": int(len(reference)),
              "knn_k": config.knn_k}
    return candidates[chosen], choice


def compiled_classifier(config: TrainConfig, train_examples: int):
    """(full model, the model to fit, compiled with the recipe's loss and optimizer).

    The model to fit is the probabilities-only view, or under deep supervision that view's
    head stacked with the per-gate heads ([N, heads, C]), each with the same cross-entropy."""
    model, auxiliary = build_model_and_auxiliary_heads(config)
    probabilities = model.output[spec.PROBABILITIES_KEY]
    steps = math.ceil(train_examples / config.batch_size)
    if not auxiliary:
        classifier = tf_keras.Model(model.input, probabilities)
        loss = tf_keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        accuracy = "accuracy"
    else:
        from trainer.models.attention import StackHeads

        stacked = StackHeads(name="deep_supervision")([probabilities, *auxiliary])
        classifier = tf_keras.Model(model.input, stacked)
        loss = DeepSupervisionLoss(config.label_smoothing)
        # The same history key as without deep supervision.
        accuracy = tf_keras.metrics.MeanMetricWrapper(main_head_accuracy, name="accuracy")
    classifier.compile(optimizer=make_optimizer(config, steps), loss=loss, metrics=[accuracy])
    return model, classifier


class DeepSupervisionLoss(tf_keras.losses.Loss):
    """Mean over heads of each head's label-smoothed cross-entropy; y_pred [N, heads, C]."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "deep_supervision_loss"):
        super().__init__(name=name)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = tf.repeat(tf.expand_dims(tf.cast(y_true, y_pred.dtype), 1),
                           tf.shape(y_pred)[1], axis=1)
        return tf.reduce_mean(tf_keras.losses.categorical_crossentropy(
            y_true, y_pred, label_smoothing=self.label_smoothing), axis=1)


def main_head_accuracy(y_true, y_pred):
    """Training accuracy of the exported head (the first of the stacked heads)."""
    return tf_keras.metrics.categorical_accuracy(y_true, y_pred[:, 0])


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> tf_keras.optimizers.Optimizer:
    """AdamW on the warmup + cosine schedule; no weight decay on BatchNorm or biases."""
    optimizer = tf_keras.optimizers.AdamW(
        learning_rate=learning_rate_schedule(config, steps_per_epoch),
        weight_decay=config.weight_decay,
    )
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """Linear warmup to `learning_rate`, then cosine decay to 1% over the remaining steps."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    return tf_keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=max(1, total - warmup),
        alpha=0.01,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


class EvalMacroF1Selector(tf_keras.callbacks.Callback):
    """After each epoch: recalibrate BatchNorm, score eval macro F1, keep the best weights,
    stop early on a plateau or when the time budget is spent; restore the best at the end."""

    def __init__(self, config: TrainConfig, model: tf_keras.Model,
                 train_split: data.SplitLike, eval_split: data.SplitLike,
                 predict_eval_labels: Callable[[], np.ndarray],
                 strategy: tf.distribute.Strategy | None = None):
        super().__init__()
        self.strategy = strategy or tf.distribute.get_strategy()
        self.config = config
        self.network = model
        self.train_split = train_split
        self.eval_split = eval_split
        self.predict_eval_labels = predict_eval_labels
        self.best_f1 = -1.0
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.best_report: dict[str, object] = {}
        self.history: list[dict[str, float]] = []
        self.started = time.monotonic()
        self.epoch_started = self.started
        # Training batches for the recalibration, unaugmented, streamed from a shuffled
        # endless pass (one iterator for the whole run).
        self.bn_batches = iter(_images_only(train_split, config.batch_size, config.seed + 1,
                                            repeat=True))
        self.bn_forward = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        # The train steps alone, before this epoch's BatchNorm pass and eval scoring (what a
        # plain fit's epoch time measures: benchmarks/training.py compares the two).
        fit_seconds = time.monotonic() - self.epoch_started
        self.bn_forward = recalibrate_batchnorm(
            self.network, self.bn_batches, self.config.bn_recalibration_batches,
            self.config.batch_size, None, self.bn_forward)
        report = metrics.f1_report(self.eval_split.labels, self.predict_eval_labels(),
                                   self.config.class_names)
        # The chief's score and clock on every worker: all take the same decisions below.
        f1 = distribution.from_chief(self.strategy, report["macro_f1"])
        logs["eval_macro_f1"] = f1
        elapsed = distribution.from_chief(self.strategy, time.monotonic() - self.started)
        self.history.append({"epoch": epoch + 1, "seconds": round(elapsed, 1),
                             "fit_seconds": round(fit_seconds, 2),
                             **{k: float(v) for k, v in logs.items()}})
        if f1 > self.best_f1:
            self.best_f1, self.best_epoch, self.best_report = f1, epoch + 1, report
            self.best_weights = self.network.get_weights()
        per_class = " ".join(f"{v:.2f}" for v in report["per_class_f1"].values())
        fitted = " ".join(f"{key} {logs[key]:.3f}" for key in ("loss", "accuracy") if key in logs)
        print(f"epoch {epoch + 1}/{self.config.epochs}: {fitted + ', ' if fitted else ''}"
              f"eval macro F1 {f1:.4f} [{per_class}] best {self.best_f1:.4f} @ "
              f"{self.best_epoch}, {elapsed:.0f}s", flush=True)
        done = epoch + 1 >= self.config.min_epochs
        if done and epoch + 1 - self.best_epoch >= self.config.early_stopping_patience:
            print(f"early stopping: no better eval macro F1 for "
                  f"{self.config.early_stopping_patience} epochs")
            self.model.stop_training = True
        target = self.config.target_eval_macro_f1
        if target is not None and f1 >= target:
            print(f"target eval macro F1 {target} reached after epoch {epoch + 1}")
            self.model.stop_training = True
        budget = self.config.max_train_seconds
        if done and budget is not None and elapsed >= budget:
            print(f"time budget of {budget:.0f}s spent after epoch {epoch + 1}")
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.network.set_weights(self.best_weights)

    def summary(self) -> dict[str, object]:
        return {
            "model": self.config.model,
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "best_eval_macro_f1": self.best_f1,
            "eval_per_class_f1": self.best_report.get("per_class_f1", {}),
            "eval_per_class_recall": self.best_report.get("per_class_recall", {}),
            "history": self.history,
        }


def recalibrate_batchnorm(model: tf_keras.Model, images, batches: int,
                          batch_size: int, rng: np.random.Generator | None, forward=None):
    """"Precise BN": set moving statistics to their average over `batches` training batches.

    `images`: an iterator of image batches (the Trainer's: a shuffled stream), or an array
    to draw `batch_size` images from with `rng` for each batch.

    `forward` is a traced training-mode pass whose BatchNorm layers use momentum 0, so each
    call leaves exactly one batch's statistics in the moving variables; we average those.
    Returns `forward` for reuse (tracing B0 costs seconds; a traced call does not).
    """
    bn_layers = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    if batches <= 0 or not bn_layers:
        return forward
    if forward is None:
        forward = _momentum_zero_forward(model, bn_layers)
    statistics = [layer.moving_mean for layer in bn_layers] + \
        [layer.moving_variance for layer in bn_layers]
    sums = [np.zeros(v.shape, np.float64) for v in statistics]
    for _ in range(batches):
        if isinstance(images, np.ndarray):
            indices = rng.choice(len(images), size=min(batch_size, len(images)), replace=False)
            batch = images[indices]
        else:
            batch = next(images)
        forward(tf.constant(batch))
        for total, variable in zip(sums, statistics, strict=True):
            total += variable.numpy()
    for total, variable in zip(sums, statistics, strict=True):
        variable.assign(total / batches)
    return forward


def _momentum_zero_forward(model: tf_keras.Model, bn_layers):
    """Traces model(x, training=True) with BatchNorm momentum 0, then restores the momenta
    (the momentum is read when tracing, so training's own traced step keeps its value)."""
    saved = [layer.momentum for layer in bn_layers]
    # A fixed signature: a retrace would silently pick up the restored momenta.
    signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)]
    forward = tf.function(lambda x: model(x, training=True), input_signature=signature)
    try:
        for layer in bn_layers:
            layer.momentum = 0.0
        forward.get_concrete_function()
    finally:
        for layer, momentum in zip(bn_layers, saved, strict=True):
            layer.momentum = momentum
    return forward


def embed(embedder: tf_keras.Model, images) -> np.ndarray:
    """Embeddings of an image array or of a split's images (streamed, in split order)."""
    if not isinstance(images, np.ndarray):
        images = _images_only(images, 64)
    return embedder.predict(images, batch_size=None if isinstance(images, tf.data.Dataset)
                            else 64, verbose=0)


def _images_only(split, batch_size: int, shuffle_seed: int | None = None,
                 repeat: bool = False) -> tf.data.Dataset:
    """A split's image batches without labels (in split order unless shuffle_seed)."""
    return split.dataset(batch_size, shuffle_seed, repeat).map(lambda images, labels: images)


def _plot(embedder, split: data.SplitLike, config: TrainConfig, plot_dir: str,
          stage: str) -> str:
    from trainer.plots import plot_embeddings

    os.makedirs(plot_dir, exist_ok=True)
    path = os.path.join(plot_dir, f"embeddings_{stage}.png")
    plot_embeddings(embed(embedder, split), split.labels, config.class_names, path,
                    f"Embeddings {stage} training")
    return path
