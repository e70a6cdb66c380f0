"""tensorflow-addons under tf_keras: the compat import, and TripletSemiHardLoss checked against
an independent NumPy implementation of semi-hard mining (Schroff et al. 2015)."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from trainer.tfa_compat import tfa


def test_alias_points_keras_src_engine_at_tf_keras():
    import tf_keras.src.engine

    assert sys.modules["keras.src.engine"] is tf_keras.src.engine
    assert hasattr(tfa.losses, "TripletSemiHardLoss")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_semihard_loss_matches_numpy_reference(seed, margin):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=24)
    embeddings = rng.normal(size=(24, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)

    loss = tfa.losses.TripletSemiHardLoss(margin=margin)(
        tf.constant(labels), tf.constant(embeddings)
    )
    np.testing.assert_allclose(float(loss), semihard_triplet_loss(labels, embeddings, margin),
                               rtol=1e-4, atol=1e-5)


def test_triplet_loss_is_zero_for_well_separated_classes():
    labels = np.repeat(np.arange(4), 4)
    embeddings = np.eye(4, 8, dtype=np.float32)[labels] * 10.0
    loss = tfa.losses.TripletSemiHardLoss(margin=1.0)(labels, embeddings)
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def semihard_triplet_loss(labels, embeddings, margin):
    """Loops over every anchor-positive pair; for each picks the closest negative farther
    than the positive, or the farthest negative when none is (FaceNet's fallback as in tfa)."""
    distances = np.sqrt(np.maximum(
        ((embeddings[:, None, :] - embeddings[None, :, :]) ** 2).sum(-1), 0.0))
    losses = []
    for anchor in range(len(labels)):
        negatives = np.flatnonzero(labels != labels[anchor])
        for positive in np.flatnonzero(labels == labels[anchor]):
            if positive == anchor:
                continue
            d_pos = distances[anchor, positive]
            d_neg = distances[anchor, negatives]
            farther = d_neg[d_neg > d_pos]
            chosen = farther.min() if len(farther) else d_neg.max()
            losses.append(max(margin + d_pos - chosen, 0.0))
    return float(np.mean(losses))
