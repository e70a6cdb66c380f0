"""Siamese embedding network trained with a triplet loss, with classification built in.

    image → backbone features (plain B0 by default: GAP of the final map; or the
            attention-gated B0 with GAP(g) beside the gates)
          → dense → L2-normalised embedding (128-d)

Training uses `tfa.losses.TripletSemiHardLoss` (Schroff et al. 2015, FaceNet) on class-balanced
P×K batches (`trainer.data.pk_dataset`): for each anchor-positive pair the loss picks the
hardest negative that is still farther away than the positive ("semi-hard").

So that one exported file gives class scores too, `with_classifier` appends a classifier over
the embedding whose reference data are stored as constants in the model:
  - prototypes: the normalised mean embedding of each class; scores = softmax(cos / T);
  - kNN: a bounded reference set (R per class); scores = softmax-weighted votes of the k
    nearest references.
Training measures both on the eval split and keeps the better (`siamese_classifier="auto"`).
"""

import numpy as np
import tensorflow as tf
import tf_keras
from tf_keras import layers

from edge import spec
from trainer.config import TrainConfig
from trainer.models import attention, backbone, baseline


def build_embedding_model(config: TrainConfig) -> tf_keras.Model:
    """image → {"embedding": [N, D] unit vectors, plus the attention maps if any}."""
    image = backbone.image_input(config)
    if config.siamese_backbone == "attention":
        features, extra_outputs = attention.attention_features(
            image, config, global_pool=config.siamese_global_pool)
    else:
        features, extra_outputs = baseline.baseline_features(image, config), {}
    features = layers.Dropout(config.dropout, name="embedding_dropout")(features)
    embedding = layers.Dense(config.embedding_dims, name="embedding_dense")(features)
    embedding = layers.UnitNormalization(name=spec.EMBEDDING_KEY)(embedding)
    return tf_keras.Model(image, {spec.EMBEDDING_KEY: embedding, **extra_outputs}, name="siamese")


def with_classifier(embedding_model: tf_keras.Model, classifier: layers.Layer) -> tf_keras.Model:
    """The export model: the embedding model's outputs plus "probabilities"."""
    outputs = dict(embedding_model.output)
    outputs[spec.PROBABILITIES_KEY] = layers.Activation("linear", name=spec.PROBABILITIES_KEY)(
        classifier(outputs[spec.EMBEDDING_KEY])
    )
    return tf_keras.Model(embedding_model.input, outputs, name="siamese_classifier")


class PrototypeClassifier(layers.Layer):
    """Scores = softmax(cosine similarity to each class prototype / temperature)."""

    def __init__(self, prototypes, temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.prototypes = tf.constant(np.asarray(prototypes, np.float32))
        self.temperature = float(temperature)

    def call(self, embeddings):
        similarity = tf.matmul(embeddings, self.prototypes, transpose_b=True)
        return tf.nn.softmax(similarity / self.temperature, axis=-1)


class KnnClassifier(layers.Layer):
    """Scores = votes of the k most similar reference embeddings, weighted by softmax(cos / T)."""

    def __init__(self, references, reference_labels, num_classes: int, k: int,
                 temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.references = tf.constant(np.asarray(references, np.float32))
        self.reference_one_hot = tf.one_hot(np.asarray(reference_labels, np.int64), num_classes)
        self.k = min(int(k), len(reference_labels))
        self.temperature = float(temperature)

    def call(self, embeddings):
        similarity = tf.matmul(embeddings, self.references, transpose_b=True)
        top_similarity, top_index = tf.math.top_k(similarity, k=self.k)
        weights = tf.nn.softmax(top_similarity / self.temperature, axis=-1)
        votes = tf.gather(self.reference_one_hot, top_index)  # [N, k, classes]
        return tf.reduce_sum(votes * weights[..., tf.newaxis], axis=1)


def class_prototypes(embeddings: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Normalised mean embedding per class; a class without examples gets a zero vector."""
    prototypes = np.zeros((num_classes, embeddings.shape[1]), np.float32)
    for index in range(num_classes):
        members = embeddings[labels == index]
        if len(members):
            mean = members.mean(axis=0)
            prototypes[index] = mean / max(np.linalg.norm(mean), 1e-12)
    return prototypes


def bounded_reference_set(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of at most `per_class` randomly chosen examples of each class."""
    rng = np.random.default_rng(seed)
    chosen = []
    for index in np.unique(labels):
        members = np.flatnonzero(labels == index)
        chosen.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))
