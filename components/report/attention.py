"""The attention numbers the report shows, measured before it renders: the SavedModel's maps on
the test split, the pointing game on the phantoms' finding masks (for the SavedModel and the
shipped TFLite file, whose maps int8 can move) and the overlay images. It runs the models; the
attention section only draws what this returns."""

import dataclasses

import numpy as np

from components.image_example_gen.executor import read_ingest_summary
from components.report.inputs import ReportInputs
from edge import spec

OVERLAY_IMAGES = 4


@dataclasses.dataclass
class Overlay:
    """One test image as the overlay figure draws it."""

    image: np.ndarray  # [S, S] model input
    mask: np.ndarray | None  # bool [S, S] finding mask
    true_class: str
    predicted_class: str  # the SavedModel's
    maps: dict  # attention key -> [h, w] map


@dataclasses.dataclass
class AttentionFindings:
    keys: list[str]
    image_size: int
    scored: bool  # False: no finding masks (real data), the pointing game is not played
    # attention key -> attention_score.PointingScore.as_dict(), on the SavedModel's maps
    pointing: dict = dataclasses.field(default_factory=dict)
    shipped_variant: str | None = None
    shipped_pointing: dict | None = None  # the same for the shipped TFLite file's maps
    shipped_note: str | None = None  # why the shipped file's maps are not scored
    overlays: list[Overlay] = dataclasses.field(default_factory=list)


def measure_attention(inputs: ReportInputs) -> AttentionFindings | None:
    """None when the run has no attention model or no test images."""
    if not inputs.serving_model_dir or not inputs.examples_uri:
        return None
    from components.lib import attention_score

    signature = attention_score.load_signature(inputs.serving_model_dir)
    keys = attention_score.attention_keys(signature)
    if not keys:
        return None
    size = attention_score.signature_input_size(signature)
    # Finding masks exist only for the phantoms (a real database's masks/ outline the lungs).
    data_root = (read_ingest_summary(inputs.ingest_summary_uri) or {}).get("input_base")
    scored = bool(inputs.synthetic_data and data_root)
    cases = attention_score.read_test_cases(inputs.examples_uri, "test", size, data_root or "",
                                            limit=None if scored else OVERLAY_IMAGES)
    if not len(cases.labels):
        return None
    outputs = attention_score.signature_outputs(signature, cases.images)
    findings = AttentionFindings(keys, size, scored)
    if scored:
        findings.pointing = {key: attention_score.pointing_game(outputs[key], cases.masks)
                             .as_dict() for key in keys}
        shipped, findings.shipped_note = shipped_attention(inputs.quantized_model_uri, keys,
                                                           cases)
        if shipped:
            findings.shipped_variant = shipped[0]
            findings.shipped_pointing = {
                key: attention_score.pointing_game(shipped[1][key], cases.masks).as_dict()
                for key in keys}
    class_names = inputs.gate_config.class_names
    findings.overlays = [
        Overlay(cases.images[index, ..., 0], cases.masks[index],
                class_names[cases.labels[index]],
                class_names[int(outputs[spec.PROBABILITIES_KEY][index].argmax())],
                {key: outputs[key][index, ..., 0] for key in keys})
        for index in _overlay_indices(cases)]
    return findings


def shipped_attention(quantized_model_uri: str | None, keys, cases):
    """((variant name, its maps on the test cases) or None, a note or None) for the variant the
    Quantizer selected: the device draws (and the pushed model is judged by) that file's maps."""
    if not quantized_model_uri:
        return None, None
    from components.lib import attention_score
    from components.quantizer import selected_variant

    row = selected_variant(quantized_model_uri)
    if row is None:
        return None, None
    try:
        maps = attention_score.runner_attention_maps(row["file"], cases.images, keys)
    except ValueError as err:  # a file without the maps: the report still renders, says so
        return None, f"The shipped {row['variant']} file's maps are not scored: {err}"
    return (row["variant"], maps), None


def _overlay_indices(cases) -> list[int]:
    """Images with a finding first, from different classes where possible, then one without."""
    with_finding = [i for i, mask in enumerate(cases.masks) if mask is not None and mask.any()]
    without = [i for i in range(len(cases.labels)) if i not in set(with_finding)]
    chosen, seen = [], set()
    for index in with_finding:
        if int(cases.labels[index]) not in seen and len(chosen) < OVERLAY_IMAGES - 1:
            chosen.append(index)
            seen.add(int(cases.labels[index]))
    chosen += [i for i in with_finding if i not in chosen][: OVERLAY_IMAGES - 1 - len(chosen)]
    chosen += without[: OVERLAY_IMAGES - len(chosen)]
    return chosen
