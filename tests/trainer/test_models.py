"""Output shapes and parameter counts of each model at 64 px (and the attention grid at other
sizes); gradients reach the gates."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from edge import spec
from trainer.config import TrainConfig
from trainer.models import attention, backbone, build_model, siamese

SIZE = 64
# EfficientNetB0 without top has 4,049,571 parameters; the rest is the head.
# EfficientNetB0 without top on the gray channel (stem conv 3x3x1x32; 4,049,571 on RGB).
B0_NO_TOP = 4_048_991
# At 64 px the gates read block2 (24 channels, 1/4 grid: 16×16 cells) and block3 (40, 1/8: 8×8).
GATED = (24, 40)
FEATURES = sum(GATED)  # concat(BN(ĝ1), BN(ĝ2)): the head reads only what the gates pass


def config(**overrides):
    return TrainConfig(image_size=SIZE, **overrides)


def images(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 1)).astype(np.float32)


def test_baseline_outputs_probabilities_and_counts_b0_plus_dense():
    model = build_model(config(model="baseline"))
    outputs = model(images())
    assert set(outputs) == {spec.PROBABILITIES_KEY}
    assert outputs[spec.PROBABILITIES_KEY].shape == (2, 4)
    np.testing.assert_allclose(outputs[spec.PROBABILITIES_KEY].numpy().sum(1), 1.0, rtol=1e-5)
    assert model.count_params() == B0_NO_TOP + 1280 * 4 + 4


@pytest.mark.parametrize("normalisation", ["sigmoid", "softmax"])
def test_attention_outputs_maps_in_unit_range(normalisation):
    model = build_model(config(model="attention", attention_normalisation=normalisation))
    outputs = model(images(3))
    assert outputs[spec.PROBABILITIES_KEY].shape == (3, 4)
    # block2 on the 1/4 grid, block3 on the 1/8: 16×16 and 8×8 at 64 px (block6/7 would be 2×2).
    for key, cells in (("attention_1", 16), ("attention_2", 8)):
        assert outputs[key].shape == (3, cells, cells, 1)
        values = outputs[key].numpy()
        assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-6
    if normalisation == "softmax":  # scaled to its peak for display
        np.testing.assert_allclose(outputs["attention_1"].numpy().max(axis=(1, 2, 3)), 1.0)


@pytest.mark.parametrize(("size", "cells", "layers"), [
    (64, (16, 8), (backbone.BLOCK2_OUTPUT, backbone.BLOCK3_OUTPUT)),
    (96, (24, 12), (backbone.BLOCK2_OUTPUT, backbone.BLOCK3_OUTPUT)),
    (128, (4, 4), (backbone.BLOCK6_OUTPUT, backbone.BLOCK7_OUTPUT)),
    (224, (7, 7), (backbone.BLOCK6_OUTPUT, backbone.BLOCK7_OUTPUT)),
])
def test_attention_maps_have_at_least_four_cells_a_side_and_224_px_keeps_7x7(size, cells, layers):
    cfg = TrainConfig(image_size=size, model="attention")
    assert attention.gated_layer_names(cfg) == layers
    model = build_model(cfg)
    for key, side in zip(("attention_1", "attention_2"), cells, strict=True):
        assert tuple(model.output[key].shape) == (None, side, side, 1)


@pytest.mark.parametrize(("width", "global_pool"), [(32, False), (64, False), (128, True)])
def test_attention_parameter_count_follows_gate_formula(width, global_pool):
    model = build_model(config(model="attention", attention_channels=width,
                               attention_global_pool=global_pool))
    features = FEATURES + (1280 if global_pool else 0)  # + GAP(g), the ungated final map
    assert model.count_params() == B0_NO_TOP + gate_params(GATED[0], width) + \
        gate_params(GATED[1], width) + 4 * features + features * 4 + 4  # BN + dense head
    assert any(layer.name == "gap" for layer in model.layers) == global_pool


def gate_params(x_channels, width, g_channels=1280):
    theta = x_channels * width  # 1×1 conv (subsample 1), no bias
    phi = g_channels * width + width
    psi = width + 1
    w = x_channels * x_channels  # dense without bias, after the spatial sum
    return theta + phi + psi + w


def test_gradients_reach_every_attention_gate_weight():
    model = build_model(config(model="attention"))
    labels = tf.one_hot([0, 1, 2, 3], 4)
    with tf.GradientTape() as tape:
        probabilities = model(images(4), training=True)[spec.PROBABILITIES_KEY]
        loss = tf_keras.losses.categorical_crossentropy(labels, probabilities)
    gate_weights = [w for w in model.trainable_weights if w.name.startswith("gate")]
    names = {w.name.split("/")[0] for w in gate_weights}
    assert {"gate1_theta", "gate1_phi", "gate1_psi", "gate1_w", "gate2_psi"} <= names
    for weight, gradient in zip(gate_weights, tape.gradient(loss, gate_weights), strict=True):
        assert gradient is not None, weight.name
        assert float(tf.reduce_max(tf.abs(gradient))) > 0.0, weight.name


@pytest.mark.parametrize(("backbone_kind", "global_pool"),
                         [("attention", True), ("attention", False), ("baseline", True)])
def test_siamese_embeddings_are_unit_length_and_classifier_scores(backbone_kind, global_pool):
    cfg = config(model="siamese", siamese_backbone=backbone_kind, embedding_dims=16,
                 siamese_global_pool=global_pool)
    model = build_model(cfg)
    outputs = model(images(3))
    embedding = outputs[spec.EMBEDDING_KEY].numpy()
    assert embedding.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)
    assert ("attention_1" in outputs) == (backbone_kind == "attention")
    if backbone_kind == "attention":
        features = FEATURES + (1280 if global_pool else 0)  # + GAP(g) beside the gates
        extra = gate_params(GATED[0], 128) + gate_params(GATED[1], 128) + 4 * features
    else:
        features, extra = 1280, 0
    assert model.count_params() - (features * 16 + 16) - B0_NO_TOP == extra
    if backbone_kind == "attention":
        assert any(layer.name == "gap" for layer in model.layers) == global_pool

    prototypes = np.eye(4, 16, dtype=np.float32)
    full = siamese.with_classifier(model, siamese.PrototypeClassifier(prototypes, 0.1))
    scores = full(images(3))
    assert scores[spec.PROBABILITIES_KEY].shape == (3, 4)
    assert scores[spec.EMBEDDING_KEY].shape == (3, 16)


def test_knn_classifier_votes_for_the_nearest_references():
    references = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
    knn = siamese.KnnClassifier(references, [0, 0, 1, 1, 2, 2], num_classes=3, k=2,
                                temperature=0.1)
    scores = knn(tf.constant([[0.0, 1.0, 0.0], [0.9, 0.1, 0.0]])).numpy()
    assert scores.argmax(axis=1).tolist() == [1, 0]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


def test_prototypes_are_normalised_class_means():
    embeddings = np.array([[1, 0], [0.8, 0.6], [0, 1]], np.float32)
    prototypes = siamese.class_prototypes(embeddings, np.array([0, 0, 1]), 3)
    np.testing.assert_allclose(np.linalg.norm(prototypes[:2], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(prototypes[2], 0.0)  # class without examples


def test_per_image_standardisation_ignores_brightness_and_contrast():
    layer = backbone.PerImageStandardisation()
    x = images(1)
    np.testing.assert_allclose(layer(x).numpy(), layer(0.5 * x + 40).numpy(), atol=1e-3)
    flat = layer(np.full((1, SIZE, SIZE, 1), 77.0, np.float32)).numpy()
    np.testing.assert_allclose(flat, backbone.CANONICAL_MEAN)


def test_weights_from_a_local_file_are_loaded(tmp_path):
    source = tf_keras.applications.EfficientNetB0(include_top=False, weights=None,
                                                  input_shape=(SIZE, SIZE, 3))
    path = str(tmp_path / "b0_notop.h5")
    source.save_weights(path)
    model = build_model(config(model="baseline", weights=path))
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0],
                                  source.get_layer("stem_conv").get_weights()[0])


def test_from_scratch_the_stem_convolution_reads_the_gray_channel_itself(tmp_path):
    # Three copies of one channel through a 3x3x3 kernel are the kernel summed over them on the
    # one channel: no gray→RGB copy, a third of the stem conv's work. Pretrained weights keep
    # the copy: the same weights on RGB (the stem kernel split in three) give the same outputs.
    gray = build_model(config(model="baseline"))
    assert gray.get_layer("stem_conv").kernel.shape == (3, 3, 1, 32)
    assert "gray_to_rgb" not in {layer.name for layer in gray.layers}

    weights_file = str(tmp_path / "b0_rgb.h5")
    tf_keras.applications.EfficientNetB0(include_top=False, weights=None,
                                         input_shape=(SIZE, SIZE, 3)).save_weights(weights_file)
    rgb = build_model(config(model="baseline", weights=weights_file))
    assert rgb.get_layer("stem_conv").kernel.shape == (3, 3, 3, 32)
    normalization = [layer for layer in gray.layers
                     if isinstance(layer, tf_keras.layers.Normalization)]
    for layer in rgb.layers:
        if not layer.weights:
            continue
        if isinstance(layer, tf_keras.layers.Normalization):  # auto-named: not by name
            layer.set_weights([np.repeat(w, 3) if w.ndim else w
                               for w in normalization.pop(0).get_weights()])
            continue
        weights = gray.get_layer(layer.name).get_weights()
        if layer.name == "stem_conv":
            weights = [np.repeat(weights[0], 3, axis=2) / 3.0]
        layer.set_weights(weights)
    x = images()
    np.testing.assert_allclose(rgb(x)[spec.PROBABILITIES_KEY].numpy(),
                               gray(x)[spec.PROBABILITIES_KEY].numpy(), atol=1e-5)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights"):
        build_model(config(model="baseline", weights=str(tmp_path / "absent.h5")))


# Gate parameters (both gates) per inter-channel width: the table docs/training.md shows.
WIDTH_TABLE = {64: 336_130, 128: 532_994, 256: 926_722, 512: 1_714_178, 1280: 4_076_546}


def test_attention_gate_width_table():
    """Parameters vs inter-channel width at 224 px (block6/block7), as docs/training.md states them
    (the original used 1280).
    The formula itself is checked against built models in the parameter-count test."""
    rows = {width: gate_params(192, width) + gate_params(320, width) for width in WIDTH_TABLE}
    print("attention width → gate parameters:", rows)
    assert rows == WIDTH_TABLE
    assert attention.grid_attention_gate  # the gate is importable on its own


def test_deep_supervision_adds_per_gate_heads_for_training_only():
    """AG-Sononet's deep supervision: each gate gets its own classifier for the loss; the
    exported model is the concat model, weight for weight (the device contract is unchanged)."""
    concat = build_model(config(model="attention"))
    model, auxiliary = attention.build_attention_model_and_auxiliary_heads(
        config(model="attention", attention_aggregation="deep_sup"))

    assert [tuple(w.shape) for w in model.weights] == [tuple(w.shape) for w in concat.weights]
    assert not [layer.name for layer in model.layers if layer.name.endswith("_classifier")]
    assert set(model.output) == set(concat.output)
    assert [tuple(head.shape) for head in auxiliary] == [(None, 4), (None, 4)]
    heads = tf_keras.Model(model.input, auxiliary)(images(3))
    for probabilities in heads:
        np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert attention.build_attention_model_and_auxiliary_heads(config(model="attention"))[1] == []
    with pytest.raises(ValueError, match="attention_aggregation"):
        config(model="attention", attention_aggregation="mean")


def test_softmax_gates_never_attend_to_the_images_outer_band():
    """1/16 of each side: the outer ring of the 16x16 block2 map at 64 px gets no weight (its
    cells see B0's zero padding and, on a radiograph, markers and text); 8x8 and 7x7 maps keep
    every cell (a sixteenth of them is less than one cell)."""
    model = build_model(config(model="attention", attention_border_fraction=1 / 16))
    outputs = model(images(3))
    fine, coarse = outputs["attention_1"].numpy()[..., 0], outputs["attention_2"].numpy()[..., 0]
    ring = np.ones((16, 16), bool)
    ring[1:-1, 1:-1] = False
    assert np.all(fine[:, ring] == 0.0) and np.all(fine[:, ~ring] > 0.0)
    assert np.all(coarse > 0.0)
    assert model.get_layer("gate1_softmax").output.shape[1:3] == (14, 14)
    assert build_model(TrainConfig(image_size=224, model="attention",
                                   attention_border_fraction=1 / 16)).get_layer("gate1_softmax") \
        .output.shape[1:3] == (7, 7)


def test_gates_on_grids_finer_than_the_final_map_average_psi_over_cells():
    """The demo's 16x16 and 8x8 gates average ψ over 3x3 cells before the softmax (a peak
    cell alone sat on a finding's rim); 224 px's 7x7 gates, on the final map's own grid, do
    not. The smoothing is a fixed average: no weights."""
    smoothed = build_model(config(model="attention", attention_smoothing=3))
    plain = build_model(config(model="attention", attention_smoothing=1))
    assert {"gate1_smooth", "gate2_smooth"} <= {layer.name for layer in smoothed.layers}
    assert smoothed.count_params() == plain.count_params()

    psi = smoothed.get_layer("gate1_psi").output
    average = tf_keras.Model(smoothed.input, [psi, smoothed.get_layer("gate1_smooth").output])
    raw, mean = (t.numpy()[0, ..., 0] for t in average(images(1)))
    assert np.isclose(mean[5, 7], raw[4:7, 6:9].mean(), atol=1e-5)
    assert np.isclose(mean[0, 0], raw[:2, :2].mean(), atol=1e-5)  # the edge: valid cells only

    at_224 = build_model(TrainConfig(model="attention", image_size=224))
    assert not [layer.name for layer in at_224.layers if layer.name.endswith("_smooth")]
    with pytest.raises(ValueError, match="attention_smoothing"):
        config(model="attention", attention_smoothing=2)
