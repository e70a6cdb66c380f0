"""Referral pieces as pure functions, and their in-model twins (trainer/referral.py)."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import metrics, referral


def test_mahalanobis_layer_equals_the_numpy_distance_and_flags_far_points():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    centres = rng.normal(0, 5, (3, 40))
    features = centres[labels] + rng.normal(0, 1, (600, 40)) * np.linspace(0.2, 3, 40)
    gaussian = referral.fit_gaussian("layer", 1, features, labels, components=8)
    gaussian.scale = 2.0
    probe = np.concatenate([features[:20], centres[:1] + 50.0])
    expected = referral.distance(gaussian, probe) / gaussian.scale
    layer = referral.MahalanobisScore(gaussian.means, gaussian.directions, gaussian.inverse_std,
                                      gaussian.residual_inverse_variance, gaussian.scale)
    actual = layer(tf.constant(probe, tf.float32)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=2e-3)
    assert actual[-1] > 20 * np.median(actual[:-1])  # far from every class mean


def test_class_conditional_distance_is_to_the_nearest_class_mean():
    features = np.array([[0.0, 0.0], [10.0, 10.0]] * 50) + np.random.default_rng(1).normal(
        0, 1, (100, 2))
    labels = np.array([0, 1] * 50)
    conditional = referral.fit_gaussian("l", 1, features, labels, components=1)
    pooled = referral.fit_gaussian("l", 1, features, None, components=1)
    near_a_mean = np.array([[10.0, 10.0]])
    between = np.array([[5.0, 5.0]])
    assert referral.distance(conditional, near_a_mean) < referral.distance(conditional, between)
    assert referral.distance(pooled, between) < referral.distance(pooled, near_a_mean)


def test_gaussian_accumulated_batch_by_batch_equals_the_direct_fit():
    """The referral fit streams the train split: statistics added per batch give the Gaussian
    that centred features would (means, covariance eigen-directions, residual variance),
    also with a large common offset and a class absent from the first batch."""
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1, 2], 100)
    rng.shuffle(labels)
    labels[:64] = np.where(labels[:64] == 2, 0, labels[:64])
    features = 1e3 + rng.normal(0, 1, (300, 12)) * np.linspace(0.5, 4, 12) + labels[:, None]
    centred = features - np.stack([features[labels == c].mean(axis=0) for c in range(3)])[labels]
    covariance = centred.T @ centred / (300 - 3)
    eigenvalues = np.sort(np.linalg.eigvalsh(covariance))[::-1]
    statistics = referral.GaussianStatistics()
    for start in range(0, 300, 64):
        statistics.add(features[start:start + 64], labels[start:start + 64])
    streamed = statistics.gaussian("l", 1, components=5)
    direct = referral.fit_gaussian("l", 1, features, labels, components=5)
    for gaussian in (streamed, direct):
        np.testing.assert_allclose(gaussian.means, [features[labels == c].mean(axis=0)
                                                    for c in range(3)], rtol=1e-6)
        np.testing.assert_allclose(1 / gaussian.inverse_std ** 2, eigenvalues[:5], rtol=1e-5)
        np.testing.assert_allclose(1 / gaussian.residual_inverse_variance,
                                   eigenvalues[5:].mean(), rtol=1e-5)
    np.testing.assert_allclose(referral.distance(streamed, features[:20]),
                               referral.distance(direct, features[:20]), rtol=1e-4)


def test_temperature_scaling_recovers_an_over_confident_model_and_keeps_the_arg_max():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 2000)
    logits = rng.normal(0, 1, (2000, 4))
    logits[np.arange(2000), labels] += 1.0
    calibrated_truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    over_confident = referral.apply_temperature(calibrated_truth, 1 / 3)  # logits × 3
    temperature = referral.fit_temperature(over_confident, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    fixed = referral.apply_temperature(over_confident, temperature)
    assert (fixed.argmax(axis=1) == over_confident.argmax(axis=1)).all()
    assert metrics.expected_calibration_error(fixed, labels) < 0.5 * \
        metrics.expected_calibration_error(over_confident, labels)
    layer = referral.TemperatureScaling(temperature)
    np.testing.assert_allclose(layer(tf.constant(over_confident)).numpy(), fixed, atol=1e-5)


def test_selective_threshold_reaches_the_target_accuracy_on_the_images_it_answers():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, False, True, False])
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    labels = np.where(correct, 0, 1)
    refer_below, coverage, accuracy = referral.selective_threshold(probabilities, labels, 0.97)
    assert refer_below == pytest.approx(0.9) and coverage == pytest.approx(0.5)
    assert accuracy == 1.0
    assert referral.selective_threshold(probabilities[:3], labels[:3], 0.97)[0] == 0.0
    assert referral.selective_threshold(probabilities[3:4], labels[3:4], 0.97)[0] == 1.0


def test_feature_summary_is_the_mean_and_std_of_each_channel_per_grid_cell():
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, :4, :4, 0] = 10.0
    image[0, 4:, 4:, 0] = np.tile([0.0, 2.0], 8).reshape(4, 4)
    summary = referral.FeatureSummary(grid=2)(tf.constant(image)).numpy()[0]
    means, stds = summary[:4], summary[4:]
    np.testing.assert_allclose(means, [10, 0, 0, 1], atol=1e-5)
    np.testing.assert_allclose(stds, [0, 0, 0, 1], atol=2e-3)


def test_rounding_noise_on_collapsed_features_does_not_read_as_out_of_distribution():
    """Features on a 4-dimensional subspace of 256 (as triplet-trained ones nearly are): noise of
    1e-5 of the leading variance on every element (8-bit rounding's order after the summaries'
    averaging) stays within the in-distribution distances (with a 1e-6 variance floor it scored
    ~200x the 99% quantile), while a shift off the subspace of a third of the leading std
    stands far out."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(256, 4)))[0]
    features = rng.normal(size=(2000, 4)) * [3.0, 2.0, 1.0, 0.5] @ basis.T
    gaussian = referral.fit_gaussian("l", 1, features, None, components=16)
    typical = np.quantile(referral.distance(gaussian, features), 0.99)

    rounded = features[:200] + rng.normal(scale=np.sqrt(1e-5 * 9.0), size=(200, 256))
    assert np.median(referral.distance(gaussian, rounded)) < typical
    normal = np.linalg.qr(np.concatenate([basis, rng.normal(size=(256, 1))], axis=1))[0][:, 4]
    off_subspace = features[:200] + 1.0 * normal
    assert np.median(referral.distance(gaussian, off_subspace)) > 3 * typical


def test_the_detail_summary_gets_a_cut_of_its_own_and_eval_acceptance_holds():
    rng = np.random.default_rng(3)
    distances = rng.chisquare(8, size=(2000, 4))  # three shared layers, then the detail one
    gaussians = [referral.LayerGaussian(layer, 1, None, None, None, 0.0, 0.0) for layer in
                 ("input", "block2b_add", "top_activation", referral.DETAIL_LAYER)]
    config = referral.ReferralConfig()
    ood_scale = referral._set_scales(gaussians, distances, config)
    scores = (distances / np.array([g.scale for g in gaussians])).max(axis=1) / ood_scale
    assert config.acceptance <= (scores <= 1).mean() <= config.acceptance + 0.003
    # The detail layer alone is referred beyond its own eval tail; with one shared cut it
    # would have needed a larger distance (the maximum over four layers has the wider tail).
    own_cut = gaussians[3].scale * ood_scale
    shared = [referral.LayerGaussian(g.layer, 1, None, None, None, 0.0, 0.0) for g in gaussians]
    shared_scale = referral._set_scales(shared, distances,
                                        referral.ReferralConfig(own_cut_layers=()))
    assert own_cut < shared[3].scale * shared_scale
