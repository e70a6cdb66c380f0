"""The Quantizer's output artifact and its readers: variants.json and the selected variant."""

import os

from tfx.types import artifact

from components.lib import storage

VARIANTS_FILENAME = "variants.json"


class QuantizedModel(artifact.Artifact):
    """A directory of .tflite variants, variants.json and the selected variant's name."""

    TYPE_NAME = "cxredge.QuantizedModel"


def read_variants_table(quantized_model_uri: str | None) -> dict | None:
    """variants.json of a Quantizer output, or None when there is none.

    Keys: variants (rows: variant, recipe, passed, macro_f1, f1_drop, size_bytes, latency_ms,
    quantization, message…), reference, selection, selected, selected_file, referral, image_size,
    class_names; a model that was not converted has only `skipped` (why)."""
    table = storage.read_record(quantized_model_uri, VARIANTS_FILENAME)
    if table is not None and "skipped" not in table and "variants" not in table:
        raise storage.ArtifactFileError(
            f"{os.path.join(quantized_model_uri, VARIANTS_FILENAME)}: neither variants nor skipped")
    return table


def selected_variant(quantized_model_uri: str) -> dict | None:
    """The selected variant's row of variants.json (with its file path), or None."""
    table = read_variants_table(quantized_model_uri)
    if table is None:
        return None
    selection = table.get("selection", {})
    for row in table.get("variants", []):
        if row["variant"] == table.get("selected"):
            return row | {"file": os.path.join(quantized_model_uri, table["selected_file"]),
                          "objective": selection.get("objective"),
                          "selection_reason": selection.get("reason"),
                          "referral": _device_referral(table.get("referral"))}
    return None


def write_skipped(output_dir: str, reason: str) -> None:
    storage.write_json(os.path.join(output_dir, VARIANTS_FILENAME),
                       {"variants": [], "selected": None, "skipped": reason}, indent=2)


def _device_referral(record: dict | None) -> dict:
    """What the manifest carries for the device: thresholds and how they were chosen."""
    keep = ("method", "ood_threshold", "refer_below", "temperature", "acceptance_target",
            "eval_acceptance", "target_accuracy", "eval_coverage_at_refer_below",
            "ece_eval_before", "ece_eval_after", "consistency_method", "unstable_below",
            "eval_unstable")
    return {key: record[key] for key in keep if key in (record or {})}

