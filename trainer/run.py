"""TFX Trainer entry point: `run_fn(fn_args)` (module file `trainer/run.py`, or
`Trainer(run_fn="trainer.run.run_fn")`).

Hyperparameters come from `custom_config` (see `trainer.config.TrainConfig`). Writes the
SavedModel to `fn_args.serving_model_dir` and `training_summary.json` beside saved_model.pb;
Siamese embedding plots go to `fn_args.model_run_dir`. The splits stream through
`fn_args.data_accessor` (trainer/data.py: decoded as they are read, never held in memory).

When TF_CONFIG names several workers (Vertex AI, Kubeflow), every worker runs run_fn: they
train together under MultiWorkerMirroredStrategy (trainer/distribution.py); only the chief fits
the referral and writes the SavedModel and summary, the others write nothing.
"""


import tensorflow as tf
from tfx import v1 as tfx

from trainer import consistency, data, distribution, referral, summary_file
from trainer.acquisition import REFERRAL_ACQUISITION, REFERRAL_SHIFT
from trainer.config import TrainConfig
from trainer.export import export_saved_model
from trainer.train import train


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    # First, before TensorFlow runs any op: a multi-worker strategy configures collectives.
    strategy = distribution.strategy_from_environment()
    config = TrainConfig.from_custom_config(fn_args.custom_config)
    print(f"training {config.model} at {config.image_size} px on {config.class_names}")
    if fn_args.data_accessor is None:
        raise ValueError("run_fn streams its splits through fn_args.data_accessor, which the "
                         "TFX Trainer sets; outside a Trainer build one with "
                         "trainer.data.data_accessor(examples_uri)")
    train_split, eval_split = (
        data.stream_split(fn_args.data_accessor.tf_dataset_factory, files, config.image_size,
                          config.num_classes, config.shuffle_buffer)
        for files in (fn_args.train_files, fn_args.eval_files))
    plot_split = _test_split_if_any(fn_args, config) if config.model == "siamese" else None
    result = train(config, train_split, eval_split, plot_split=plot_split or eval_split,
                   plot_dir=fn_args.model_run_dir, strategy=strategy)
    if not distribution.is_chief(strategy):
        print("trained as a non-chief worker; the chief exports the model")
        distribution.barrier(strategy)  # stay up until the chief has exported
        return
    if plot_split is None and config.model == "siamese":
        result.summary["embedding_plot_split"] = "eval"
    elif config.model == "siamese":
        result.summary["embedding_plot_split"] = "test"

    model = result.model
    if config.referral:  # OOD score + calibrated probabilities, inside the exported model
        # Trained against acquisition changes: the referral accepts the milder ones too.
        reacquire = (data.make_augmenter(config.image_size, REFERRAL_SHIFT, False, config.seed,
                                         REFERRAL_ACQUISITION)
                     if config.augment_acquisition > 0 else None)
        model, result.summary["referral"] = referral.fit_referral(
            model, train_split, eval_split, referral.ReferralConfig(
                acceptance=config.referral_acceptance, components=config.referral_components,
                target_accuracy=config.referral_target_accuracy), reacquire)
        if config.consistency_check:
            model = consistency.with_consistency(model)
            result.summary["referral"] |= consistency.summary(model, eval_split)
        print("referral:", {k: v for k, v in result.summary["referral"].items()
                            if k not in ("method", "layers", "consistency_method")})
    export_saved_model(model, config.image_size, fn_args.serving_model_dir)
    summary_file.write_training_summary(fn_args.serving_model_dir, result.summary)
    print(f"exported to {fn_args.serving_model_dir}: best eval macro F1 "
          f"{result.summary['best_eval_macro_f1']:.4f} at epoch {result.summary['best_epoch']}")
    distribution.barrier(strategy)  # the other workers wait for this (no-op on one machine)


def _test_split_if_any(fn_args: tfx.components.FnArgs, config: TrainConfig):
    """The examples artifact's Split-test, if the ExampleGen wrote one (plots only)."""
    eval_patterns = fn_args.eval_files
    patterns = [pattern.replace("Split-eval", "Split-test") for pattern in eval_patterns]
    if patterns == list(eval_patterns) or not any(tf.io.gfile.glob(p) for p in patterns):
        return None
    return data.stream_split(fn_args.data_accessor.tf_dataset_factory, patterns,
                             config.image_size, config.num_classes, config.shuffle_buffer)
