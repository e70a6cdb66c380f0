"""Training hyperparameters: one dataclass, filled from the TFX Trainer's `custom_config`.

Defaults are the recipe for training from scratch on CPU (docs/training.md): per-image
standardisation inside the model, BatchNorm momentum 0.9 plus recalibration before each
evaluation, AdamW, label smoothing, warmup then cosine decay.
"""

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

from edge import spec
from trainer.constants import MODEL_KINDS

ATTENTION_NORMALISATIONS = ("sigmoid", "softmax")
ATTENTION_AGGREGATIONS = ("concat", "deep_sup")
SIAMESE_CLASSIFIERS = ("auto", "prototype", "knn")
# Renamed keys: an old one still works, with a warning naming the new one.
RENAMED = {"ood_acceptance": "referral_acceptance", "ood_components": "referral_components"}


@dataclasses.dataclass
class TrainConfig:
    model: str = "attention"  # baseline | attention | siamese
    # The pipeline's fingerprint of this code (pipelines/pipeline.py source_fingerprint): part of
    # the Trainer's cache key and recorded in the training summary; training does not read it.
    code_fingerprint: str = ""
    class_names: tuple[str, ...] = spec.CLASS_NAMES
    image_size: int = spec.DEFAULT_IMAGE_SIZE
    # EfficientNetB0 weights: "none" (offline default), "imagenet" (Keras download) or a path.
    weights: str = "none"
    seed: int = 42

    # Optimisation.
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    dropout: float = 0.2
    class_weighting: bool = True  # inverse-frequency class weights against imbalance
    early_stopping_patience: int = 6  # epochs without a better eval macro F1
    min_epochs: int = 1
    max_train_seconds: float | None = None  # stop after the epoch that crosses it
    target_eval_macro_f1: float | None = None  # stop as soon as eval macro F1 reaches it
    verbose: int = 0  # Keras's own progress (1 bar, 2 a line per epoch); the selector prints one
    # Streaming input (trainer/data.py): serialized records held for shuffling. Training reads
    # each epoch through a buffer of this many records (PNG bytes, not pixels), so memory is
    # bounded by it, not by the split; a split no larger than it is shuffled completely.
    shuffle_buffer: int = 2048

    # BatchNorm from scratch: faster moving averages, recalibrated before eval (docs/training.md).
    bn_momentum: float = 0.9
    bn_recalibration_batches: int = 10

    # Augmentation (training only): random shift as a fraction of the side; flips are off by
    # default because a chest X-ray is not left/right symmetric.
    augment_shift: float = 0.08
    augment_flip: bool = False
    # Acquisition changes (trainer/acquisition.py: resampling path, blur or sharpening, tone
    # curve, contrast, noise, JPEG), each applied to an image with this probability; 0: off.
    augment_acquisition: float = 0.3

    # Attention gates (Schlemper et al. 2018).
    attention_channels: int = 128  # inter-channel width; the original used 1280 (49.6M params)
    # softmax: each gate's weights sum to 1 over the positions, so a gate must choose where to
    # look; sigmoid gates learned to pass every cell but the findings
    # (docs/decisions/attention-gates.md).
    attention_normalisation: str = "softmax"  # softmax | sigmoid
    # Whether the head also reads GAP(g), the ungated final map (AG-Sononet's "concat" head).
    # Off: the class must come through the gates, which is what makes their maps point.
    attention_global_pool: bool = False
    # "deep_sup" (AG-Sononet's deep supervision): during training each gate's ĝ also gets its
    # own classifier and loss, so every gate must find the class evidence alone instead of
    # leaning on the other; the exported model keeps only the concat head. "concat": one head.
    # Not the default: it did not raise the pointing game (docs/decisions/attention-gates.md).
    attention_aggregation: str = "concat"
    attention_subsample: int = 1  # θ stride; block6/7 already share the final map's grid
    # Softmax gates never attend to the outer band of the image, this share of each side
    # (whole cells only: the outer ring of the demo's 16x16 block2 map; none of an 8x8 or 7x7
    # map). Those cells see B0's zero padding, and a gate with nothing to find in an image
    # parked its weight there (Lung_Opacity phantoms, whose class the model can read from the
    # other lesions' absence); on radiographs the band holds markers and text, which COVID
    # classifiers are known to read instead of the lungs (DeGrave et al. 2021;
    # docs/decisions/attention-gates.md).
    attention_border_fraction: float = 1 / 16
    # ψ averaged over this many cells a side before the softmax, on gate grids finer than the
    # final map's (the demo's 16x16 and 8x8; 224 px's 7x7 maps are not smoothed): 1 = off.
    attention_smoothing: int = 3
    # The gates read block6/block7 (stride 32: 7x7 at 224 px) when that grid has at least this
    # many cells a side, otherwise block2/block3 (strides 4 and 8: 16x16 and 8x8 at the demo's
    # 64 px; block4's cells there already see nearly the whole image).
    attention_min_cells: int = 4

    # Siamese.
    # Plain B0 (GAP of the final map): an embedding wants every discriminative feature, and
    # gates are judged by where they point (docs/decisions/siamese-baseline-backbone.md).
    siamese_backbone: str = "baseline"  # baseline | attention
    # With the attention backbone, the embedding also reads GAP(g) beside the gates, without
    # which it lost macro F1 (docs/decisions/siamese-baseline-backbone.md).
    siamese_global_pool: bool = True
    embedding_dims: int = 128
    triplet_margin: float = 1.0
    pk_classes: int = 4  # P classes per batch
    pk_images: int = 8  # K images per class
    steps_per_epoch: int | None = None  # Siamese: P×K batches per epoch (default ≈ N/(P·K))
    siamese_classifier: str = "auto"  # auto | prototype | knn (auto: the better on eval)
    knn_k: int = 5
    knn_reference_per_class: int = 32  # bounded reference set stored in the model
    prototype_temperature: float = 0.1
    embedding_plots: bool = True

    # Referral (trainer/referral.py): an OOD score and a temperature fitted after training;
    # referral_<name> is ReferralConfig.<name>.
    referral: bool = True
    referral_acceptance: float = 0.99  # share of eval images the OOD threshold accepts
    referral_components: int = 64  # PCA directions per layer Gaussian
    referral_target_accuracy: float = 0.97  # eval accuracy at or above the default refer_below
    # The answer on mild re-acquisitions of the image (trainer/consistency.py), inside the
    # exported model: an image whose class a slight blur or sharpening changes is "unstable".
    consistency_check: bool = True

    def __post_init__(self):
        self.class_names = tuple(self.class_names)
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")
        if self.attention_normalisation not in ATTENTION_NORMALISATIONS:
            raise ValueError(
                f"attention_normalisation must be one of {ATTENTION_NORMALISATIONS}, "
                f"got {self.attention_normalisation!r}"
            )
        if self.attention_aggregation not in ATTENTION_AGGREGATIONS:
            raise ValueError(
                f"attention_aggregation must be one of {ATTENTION_AGGREGATIONS}, "
                f"got {self.attention_aggregation!r}"
            )
        if self.siamese_classifier not in SIAMESE_CLASSIFIERS:
            raise ValueError(
                f"siamese_classifier must be one of {SIAMESE_CLASSIFIERS}, "
                f"got {self.siamese_classifier!r}"
            )
        if self.siamese_backbone not in ("attention", "baseline"):
            raise ValueError(f"siamese_backbone must be attention|baseline, got "
                             f"{self.siamese_backbone!r}")
        if self.attention_smoothing < 1 or self.attention_smoothing % 2 == 0:
            raise ValueError(f"attention_smoothing must be an odd number of cells >= 1 (a "
                             f"centred window), got {self.attention_smoothing}")
        if len(self.class_names) < 2:
            raise ValueError("need at least two class names")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 (EfficientNet strides 32), "
                             f"got {self.image_size}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any] | None) -> "TrainConfig":
        """Builds the config from a Trainer's custom_config; unknown keys are an error."""
        custom_config = dict(custom_config or {})
        for old, new in RENAMED.items():
            if old not in custom_config:
                continue
            if new in custom_config:
                raise ValueError(f"custom_config key {old!r} was renamed {new!r}; set only {new!r}")
            warnings.warn(f"custom_config key {old!r} is now {new!r}; please rename it",
                          FutureWarning, stacklevel=2)
            custom_config[new] = custom_config.pop(old)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(custom_config) - known)
        if unknown:
            raise ValueError(f"unknown custom_config keys: {unknown}; known: {sorted(known)}")
        return cls(**custom_config)
