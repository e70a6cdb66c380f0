"""Keras models: EfficientNetB0 baseline, attention-gated B0 and a triplet Siamese network.

`build_model(config)` returns the model to export: input `image` float32 [N, size, size, 1]
(0..255 grayscale) and a dict of outputs named as in `edge.spec`.
"""

from trainer.config import TrainConfig


def build_model(config: TrainConfig):
    if config.model == "baseline":
        from trainer.models import baseline

        return baseline.build_baseline(config)
    if config.model == "attention":
        from trainer.models import attention

        return attention.build_attention_model(config)
    from trainer.models import siamese

    return siamese.build_embedding_model(config)


def build_model_and_auxiliary_heads(config: TrainConfig):
    """(the export model, training-only class-probability tensors): the attention model's
    per-gate heads under deep supervision (`attention_aggregation="deep_sup"`), else []."""
    if config.model == "attention":
        from trainer.models import attention

        return attention.build_attention_model_and_auxiliary_heads(config)
    return build_model(config), []
