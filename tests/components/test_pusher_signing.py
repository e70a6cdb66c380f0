"""EdgePusher signs the manifest when given a key (CXR_SIGNING_KEY), and only then."""

import json
import os

import pytest

from components.edge_pusher import LATEST_LINK, EdgePusher, push
from edge import signing, spec
from edge.manifest import ManifestError, load_model_dir

pytest.importorskip("cryptography")

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "edge", "data")


def _push(destination, variant="int8", signing_key=None):
    return push(str(destination), blessed=True,
                variant={"variant": variant,
                         "file": os.path.join(GOLDEN, f"golden_{variant}.tflite")},
                class_names=spec.CLASS_NAMES, metrics={}, data_fingerprint=None,
                pipeline_run_id="run-1",
                signing_key=str(signing_key) if signing_key else None)


@pytest.fixture
def keys(tmp_path):
    return signing.generate_keypair(tmp_path / "keys"), signing.generate_keypair(tmp_path / "new")


def test_a_signing_key_signs_the_pushed_manifest(tmp_path, keys):
    (private, public), _ = keys
    record = _push(tmp_path / "serving", signing_key=private)
    key_id = signing.key_id(signing.load_public_key(public))
    assert record["signed_by"] == key_id and key_id in record["reason"]
    loaded = load_model_dir(tmp_path / "serving" / LATEST_LINK, trusted_keys=[public])
    assert loaded.signed_by == key_id


def test_without_a_key_nothing_is_signed(tmp_path, keys):
    (_, public), _ = keys
    record = _push(tmp_path / "serving")
    assert record["signed_by"] is None
    assert not os.path.exists(os.path.join(record["version_dir"], signing.SIGNATURE_FILENAME))
    with pytest.raises(ManifestError, match="is not signed"):
        load_model_dir(record["version_dir"], trusted_keys=[public])


def test_an_unusable_key_stops_the_push_before_anything_is_written(tmp_path):
    (tmp_path / "not-a-key.pem").write_text("nope")
    with pytest.raises(signing.SignatureError, match="not a PEM private key"):
        _push(tmp_path / "serving", signing_key=tmp_path / "not-a-key.pem")
    with pytest.raises(signing.SignatureError, match="cannot read the signing key"):
        _push(tmp_path / "serving", signing_key=tmp_path / "missing.pem")
    assert not (tmp_path / "serving").exists()


def test_a_reused_version_gets_the_current_keys_signature(tmp_path, keys):
    (old_private, old_public), (new_private, new_public) = keys
    first = _push(tmp_path / "serving")  # pushed before signing was set up
    again = _push(tmp_path / "serving", signing_key=old_private)
    assert again["reused"] and again["version_dir"] == first["version_dir"]
    assert load_model_dir(again["version_dir"], trusted_keys=[old_public]).signed_by
    signature = os.path.join(again["version_dir"], signing.SIGNATURE_FILENAME)
    before = os.path.getmtime(signature), open(signature).read()
    _push(tmp_path / "serving", signing_key=old_private)  # already signed: left alone
    assert (os.path.getmtime(signature), open(signature).read()) == before
    # Rotation: the pipeline's new key re-signs; devices trusting only the old key refuse.
    rotated = _push(tmp_path / "serving", signing_key=new_private)
    assert rotated["signed_by"] == signing.key_id(signing.load_public_key(new_public))
    assert load_model_dir(rotated["version_dir"], trusted_keys=[old_public, new_public])
    with pytest.raises(ManifestError, match="does not match"):
        load_model_dir(rotated["version_dir"], trusted_keys=[old_public])
    manifest = json.loads(open(os.path.join(rotated["version_dir"], "manifest.json")).read())
    assert manifest["pipeline_run_id"] == "run-1"  # the manifest itself is never rewritten


def test_the_component_takes_its_key_path_from_the_environment(tmp_path, monkeypatch, keys):
    from tfx.types import channel_utils, standard_artifacts

    from components.quantizer import QuantizedModel

    def pusher(**kwargs):
        return EdgePusher(
            model_blessing=channel_utils.as_channel([standard_artifacts.ModelBlessing()]),
            quantized_model=channel_utils.as_channel([QuantizedModel()]),
            push_destination=str(tmp_path / "serving"), **kwargs)

    monkeypatch.delenv(signing.SIGNING_KEY_ENV, raising=False)
    assert pusher().exec_properties.get("signing_key") is None  # off by default
    (private, _), _ = keys
    monkeypatch.chdir(private.parent)
    monkeypatch.setenv(signing.SIGNING_KEY_ENV, private.name)
    assert pusher().exec_properties["signing_key"] == str(private)  # absolute: a path, not a key
    assert pusher(signing_key="").exec_properties.get("signing_key") is None  # explicit off
