"""Fingerprints of our code in TFX's cache keys: changed code a component runs re-runs it."""

import textwrap

from components.lib import code_fingerprint


def _package(root, files):
    for name, text in files.items():
        path = root / "fpdemo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_a_change_in_any_imported_module_changes_the_fingerprint_and_no_other(
        tmp_path, monkeypatch):
    _package(tmp_path, {
        "__init__.py": "",
        "component.py": """
            from fpdemo.sub import helper
            from . import direct

            def run():
                import fpdemo.lazy  # imported inside a function: still part of the code
                return helper.VALUE + direct.VALUE
        """,
        "direct.py": "VALUE = 1\n",
        "lazy.py": "VALUE = 2\n",
        "sub/__init__.py": "",
        "sub/helper.py": "from .. import deep\nVALUE = 3\n",
        "deep.py": "VALUE = 4\n",
        "unrelated.py": "VALUE = 5\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    packages = ("fpdemo",)

    closure = code_fingerprint.import_closure(["fpdemo.component"], packages)
    assert set(closure) == {"fpdemo", "fpdemo.component", "fpdemo.direct", "fpdemo.lazy",
                            "fpdemo.sub", "fpdemo.sub.helper", "fpdemo.deep"}

    before = code_fingerprint.module_fingerprint("fpdemo.component", packages=packages)
    assert len(before) == 16
    (tmp_path / "fpdemo" / "unrelated.py").write_text("VALUE = 50\n")
    assert code_fingerprint.module_fingerprint("fpdemo.component", packages=packages) == before
    for changed in ("deep.py", "lazy.py", "sub/helper.py"):
        path = tmp_path / "fpdemo" / changed
        original = path.read_text()
        path.write_text(original + "# changed\n")
        assert code_fingerprint.module_fingerprint("fpdemo.component",
                                                   packages=packages) != before, changed
        path.write_text(original)
    assert code_fingerprint.module_fingerprint("fpdemo.component", packages=packages) == before


def test_the_ingestion_fingerprint_covers_its_writer_and_decoder_not_the_quantizer():
    closure = code_fingerprint.import_closure(["components.image_example_gen.executor"])
    assert {"components.image_example_gen.write", "components.image_example_gen.ingest",
            "edge.imageio", "components.lib.storage"} <= set(closure)
    assert "components.quantizer" not in closure
