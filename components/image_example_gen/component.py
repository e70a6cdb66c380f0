"""ImageExampleGen: a TFX component that turns a class-folder tree of X-rays into Examples.

Outputs a standard `Examples` artifact (Split-<name>/data_tfrecord-*.gz, gzipped tf.Examples
with the feature keys of edge.spec) that StatisticsGen, SchemaGen, ExampleValidator, Trainer
and Evaluator read as they read any ExampleGen's output, plus a quarantine report and an
ingest summary. The class order travels with the data: the Examples artifact carries it as
the `class_names` custom property and the summary lists it.
"""

import json
import os

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.image_example_gen import executor, ingest
from components.lib import artifact_types
from components.lib.code_fingerprint import module_fingerprint


class ImageExampleGenSpec(ComponentSpec):
    PARAMETERS = {
        executor.INPUT_BASE: ExecutionParameter(type=str),
        executor.CLASS_NAMES: ExecutionParameter(type=str, optional=True),
        executor.SPLIT_RATIOS: ExecutionParameter(type=str, optional=True),
        executor.SEED: ExecutionParameter(type=int, optional=True),
        executor.MAX_SIDE: ExecutionParameter(type=int, optional=True),
        executor.MAX_PIXELS: ExecutionParameter(type=int, optional=True),
        executor.MAX_QUARANTINE_FRACTION: ExecutionParameter(type=float, optional=True),
        executor.INPUT_FINGERPRINT: ExecutionParameter(type=str, optional=True),
        executor.CODE_FINGERPRINT: ExecutionParameter(type=str, optional=True),
        executor.EVIDENCE_DIR: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.QUARANTINE_KEY: ChannelParameter(type=artifact_types.QuarantineReport),
        executor.SUMMARY_KEY: ChannelParameter(type=artifact_types.IngestSummary),
    }


class ImageExampleGen(base_beam_component.BaseBeamComponent):
    """Class folders (PNG/JPEG/DICOM...) → leakage-free train/eval/test tf.Examples.

    Args:
      input_base: the folder holding one sub-folder per class (`<Class>/images/*` as in the
        Kaggle COVID-19 Radiography database, or `<Class>/*`).
      class_names: label order; default the class folders found, sorted.
      split_ratios: [(split name, weight)], default train/eval/test 70/15/15.
      seed: shuffles which hash groups go to which split.
      max_side: cap on the stored image's longer side in px (0 keeps the original size).
      max_pixels: larger images are quarantined as `too_large` (decompression bombs).
      max_quarantine_fraction: the component fails when more files than this are quarantined.
      quarantine_evidence_dir: where that failure writes the quarantine report, in a folder
        named after the run (a failed execution's own outputs are discarded by TFX).
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base, class_names=None, split_ratios=None, seed=0, max_side=0,
                 max_pixels=None, max_quarantine_fraction=None, quarantine_evidence_dir=None):
        outputs = {
            executor.EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
            executor.QUARANTINE_KEY: types.Channel(type=artifact_types.QuarantineReport),
            executor.SUMMARY_KEY: types.Channel(type=artifact_types.IngestSummary),
        }
        super().__init__(spec=ImageExampleGenSpec(
            input_base=input_base,
            class_names=json.dumps(list(class_names)) if class_names else None,
            split_ratios=json.dumps([list(r) for r in split_ratios]) if split_ratios else None,
            seed=seed,
            max_side=max_side,
            max_pixels=max_pixels,
            max_quarantine_fraction=max_quarantine_fraction,
            input_fingerprint=tree_fingerprint(input_base),
            code_fingerprint=module_fingerprint(executor.__name__),
            quarantine_evidence_dir=quarantine_evidence_dir,
            **outputs,
        ))

    @property
    def examples(self):
        return self.outputs[executor.EXAMPLES_KEY]


def tree_fingerprint(input_base):
    """Paths, sizes and mtimes of the tree, so a cached run is reused only for the same files.

    Computed when the pipeline is built; an input_base this machine cannot list (a bucket
    read only by the workers) gets no fingerprint and caching then keys on the path alone.
    """
    if not os.path.isdir(input_base):
        return ""
    import hashlib

    digest = hashlib.sha256()
    for folder, subfolders, filenames in os.walk(input_base):
        subfolders.sort()
        for filename in sorted(filenames):
            path = os.path.join(folder, filename)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            relative = os.path.relpath(path, input_base)
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


__all__ = ["ImageExampleGen", "ImageExampleGenSpec", "ingest"]
