"""`cxr-edge info`: the interpreter, the tensors, the classes and the manifest's metrics."""

from __future__ import annotations

import json
import sys

from edge.commands.common import EXIT_OK, open_classifier, table, variant_fields


def info_command(args) -> int:
    classifier = open_classifier(args)
    model = classifier.model
    runner = model.runner
    manifest = model.manifest or {}
    info = {
        "model": str(args.model),
        "model_file": str(runner.model_path),
        "runtime": runner.runtime,
        "signature": runner.signature,
        "verified_manifest": model.manifest is not None,
        "input": runner.input.as_dict(),
        "outputs": [info.as_dict() for info in runner.outputs.values()],
        "class_names": list(model.class_names),
        **variant_fields(classifier, args.threads),
        "selection": ((manifest.get("metrics") or {}).get("variant") or {}).get(
            "selection_reason"),
        "metrics": manifest.get("metrics", {}),
        "synthetic_data": manifest.get("synthetic_data"),
        "pipeline_run_id": manifest.get("pipeline_run_id"),
        "created_at": manifest.get("created_at"),
    }
    if args.format == "json":
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return EXIT_OK
    rows = [["field", "value"]]
    for key, value in info.items():
        if key == "outputs":
            rows += [[f"output {o['key']}", _describe_tensor(o)] for o in value]
        elif key == "input":
            rows.append(["input " + value["key"], _describe_tensor(value)])
        elif key == "metrics":
            rows += [[f"metric {name}", str(metric)] for name, metric in sorted(value.items())]
        else:
            rows.append([key, ", ".join(value) if isinstance(value, list) else str(value)])
    sys.stdout.write(table(rows))
    return EXIT_OK


def _describe_tensor(tensor: dict) -> str:
    text = f"{tensor['dtype']} {tensor['shape']}"
    if tensor["quantization"]:
        q = tensor["quantization"]
        text += f" (scale {q['scale']:.6g}, zero point {q['zero_point']})"
    return text
