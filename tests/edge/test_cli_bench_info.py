"""`cxr-edge bench` and `info` name the variant, its quantization and the thread count."""

import json

from edge import cli
from edge.manifest import write_model_dir
from tests.edge.golden import model_path


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_shows_the_manifest_variant_the_models_own_quantization_and_threads(tmp_path,
                                                                                  capsys):
    pushed = tmp_path / "pushed"
    write_model_dir(pushed, model_path("int8"), variant="int8", metrics={"variant": {
        "variant": "int8", "selection_reason": "int8 shipped: the fastest variant"}})
    code, out, _ = _run(capsys, "info", "--model", pushed, "--format", "json", "--threads", "2")
    info = json.loads(out)
    assert code == 0
    assert (info["variant"], info["quantization"], info["threads"]) == ("int8", "int8", 2)
    assert info["quantization_detail"].startswith("int8: 4/4 conv/dense ops on integer tensors")
    assert info["selection"] == "int8 shipped: the fastest variant"
    code, out, _ = _run(capsys, "info", "--model", pushed)
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["quantization"].split()[1] == "int8" and "runtime default" in lines["threads"]


def test_bench_reports_variant_quantization_and_threads_of_a_bare_file_too(capsys):
    # A bare .tflite has no manifest, so no variant name; its tensors still say dynamic-range.
    code, out, err = _run(capsys, "bench", "--model", model_path("dynamic"), "--runs", "3",
                          "--threads", "1", "--warmup", "2")
    bench = json.loads(out)
    assert code == 0 and (bench["warmup"], bench["runs"]) == (2, 3)
    assert (bench["variant"], bench["quantization"], bench["threads"]) == (None,
                                                                          "dynamic-range", 1)
    assert "quantization" in err and "dynamic-range" in err
