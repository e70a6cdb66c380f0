"""A model directory is closed (no file outside it) and, given a trusted key, authentic."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from edge import cli, signing, spec
from edge.manifest import ManifestError, load_model_dir, write_model_dir
from tests.edge.conftest import radiograph_like
from tests.edge.golden import model_path

pytest.importorskip("cryptography")


@pytest.fixture
def pushed(tmp_path):
    directory = tmp_path / "pushed"
    write_model_dir(directory, model_path("int8"), variant="int8", metrics={"macro_f1": 0.9})
    return directory


@pytest.fixture
def keys(tmp_path):
    """Two key pairs: the pipeline's and someone else's."""
    private, public = signing.generate_keypair(tmp_path / "keys")
    other_private, other_public = signing.generate_keypair(tmp_path / "other-keys")
    return {"private": private, "public": public,
            "other_private": other_private, "other_public": other_public}


def _manifest(directory):
    return json.loads((directory / spec.MANIFEST_FILENAME).read_text())


def _rewrite(directory, **changes):
    manifest = _manifest(directory)
    manifest.update(changes)
    (directory / spec.MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=2))


def _sign(directory, private_key_path):
    key = signing.load_private_key(private_key_path)
    return signing.sign_manifest(directory, key, spec.MANIFEST_FILENAME)


# ---------------------------------------------------------------------------- closed directory


@pytest.mark.parametrize(
    "model_file",
    ["../outside.tflite", "/abs/outside.tflite", "sub/model.tflite", "..", "", None, 7,
     "sub\\model.tflite"],
)
def test_model_file_must_be_a_file_name_in_the_directory(pushed, model_file):
    outside = pushed.parent / "outside.tflite"
    shutil.copy(pushed / spec.MODEL_FILENAME, outside)  # a real, matching model out there
    (pushed / "sub").mkdir()
    shutil.copy(outside, pushed / "sub" / "model.tflite")
    _rewrite(pushed, model_file=model_file)
    with pytest.raises(ManifestError, match="must be the name of a file in the model directory"):
        load_model_dir(pushed)


def test_absolute_model_file_is_refused_even_when_it_exists(pushed, tmp_path):
    outside = tmp_path / "elsewhere.tflite"
    shutil.copy(pushed / spec.MODEL_FILENAME, outside)
    _rewrite(pushed, model_file=str(outside))
    with pytest.raises(ManifestError, match="no absolute path"):
        load_model_dir(pushed)


def test_symlinks_out_of_the_directory_are_refused(pushed, tmp_path):
    outside = tmp_path / "outside.tflite"
    shutil.move(pushed / spec.MODEL_FILENAME, outside)
    os.symlink(outside, pushed / spec.MODEL_FILENAME)  # same bytes, same sha256, wrong place
    with pytest.raises(ManifestError, match="outside the model directory"):
        load_model_dir(pushed)


@pytest.mark.parametrize("name", [spec.MANIFEST_FILENAME, spec.LABELS_FILENAME])
def test_manifest_and_labels_may_not_lead_out_either(pushed, tmp_path, name):
    outside = tmp_path / f"outside-{name}"
    shutil.move(pushed / name, outside)
    os.symlink(outside, pushed / name)
    with pytest.raises(ManifestError, match="outside the model directory"):
        load_model_dir(pushed)


def test_symlinks_inside_the_directory_and_a_linked_directory_are_fine(pushed, tmp_path):
    os.rename(pushed / spec.MODEL_FILENAME, pushed / "model-v1.tflite")
    os.symlink("model-v1.tflite", pushed / spec.MODEL_FILENAME)
    os.symlink(pushed, tmp_path / "latest")  # what the pusher's `latest` is
    assert load_model_dir(tmp_path / "latest").manifest["variant"] == "int8"


def test_model_file_that_is_a_folder_is_refused(pushed):
    (pushed / "folder.tflite").mkdir()
    _rewrite(pushed, model_file="folder.tflite")
    with pytest.raises(ManifestError, match="not a regular file"):
        load_model_dir(pushed)


@pytest.mark.parametrize(
    "changes",
    [{"input": None}, {"input": "int8"}, {"class_names": "COVID"}, {"input_size": "32"},
     {"sha256": None}, {"class_names": [1, 2, 3, 4]}],
)
def test_manifest_values_of_the_wrong_type_are_refused_not_crashed_on(pushed, changes):
    _rewrite(pushed, **changes)
    with pytest.raises(ManifestError, match=list(changes)[0]):
        load_model_dir(pushed)


# ---------------------------------------------------------------------------- signatures


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    private, public = signing.generate_keypair(tmp_path / "k")
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in public.read_bytes()
    before = private.read_bytes()
    with pytest.raises(signing.SignatureError, match="never overwritten"):
        signing.generate_keypair(tmp_path / "k")
    assert private.read_bytes() == before


def test_signed_model_loads_and_names_its_key(pushed, keys):
    _sign(pushed, keys["private"])
    loaded = load_model_dir(pushed, trusted_keys=[keys["public"]])
    key_id = signing.key_id(signing.load_public_key(keys["public"]))
    assert loaded.signed_by == key_id
    record = json.loads((pushed / signing.SIGNATURE_FILENAME).read_text())
    assert record["algorithm"] == "Ed25519" and record["key_id"] == key_id
    assert load_model_dir(pushed).signed_by is None  # no trusted key: signatures not checked


def test_tampered_model_is_refused_even_with_a_matching_checksum(pushed, keys):
    _sign(pushed, keys["private"])
    # Whoever can write the directory can write a consistent manifest for another model.
    write_model_dir(pushed, model_path("fp32"), variant="int8", metrics={"macro_f1": 0.9})
    load_model_dir(pushed)  # consistent, so without a trusted key it would load...
    with pytest.raises(ManifestError, match="does not match its manifest under any trusted key"):
        load_model_dir(pushed, trusted_keys=[keys["public"]])  # ...but it is not authentic


def test_tampered_model_without_a_manifest_change_is_refused(pushed, keys):
    _sign(pushed, keys["private"])
    shutil.copy(model_path("fp32"), pushed / spec.MODEL_FILENAME)
    with pytest.raises(ManifestError, match="does not match its manifest: sha256"):
        load_model_dir(pushed, trusted_keys=[keys["public"]])


def test_tampered_manifest_is_refused(pushed, keys):
    _sign(pushed, keys["private"])
    text = (pushed / spec.MANIFEST_FILENAME).read_text()
    (pushed / spec.MANIFEST_FILENAME).write_text(text.replace("0.9", "0.99"))
    with pytest.raises(ManifestError, match="The manifest or its signature was changed"):
        load_model_dir(pushed, trusted_keys=[keys["public"]])
    (pushed / spec.MANIFEST_FILENAME).write_text(text + " ")  # one byte of whitespace
    with pytest.raises(ManifestError, match="does not match"):
        load_model_dir(pushed, trusted_keys=[keys["public"]])


def test_model_signed_by_another_key_is_refused_naming_both_keys(pushed, keys):
    _sign(pushed, keys["other_private"])
    with pytest.raises(ManifestError) as caught:
        load_model_dir(pushed, trusted_keys=[keys["public"]])
    message = str(caught.value)
    other_id = signing.key_id(signing.load_public_key(keys["other_public"]))
    trusted_id = signing.key_id(signing.load_public_key(keys["public"]))
    assert other_id in message and trusted_id in message and "does not trust" in message


def test_unsigned_model_or_bare_file_is_refused_with_a_trusted_key(pushed, keys):
    with pytest.raises(ManifestError, match="is not signed"):
        load_model_dir(pushed, trusted_keys=[keys["public"]])
    with pytest.raises(ManifestError, match="bare model file"):
        load_model_dir(pushed / spec.MODEL_FILENAME, trusted_keys=[keys["public"]])


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"algorithm": "Ed25519"}),
     json.dumps({"algorithm": "Ed25519", "signature": "!!!"}),
     json.dumps({"algorithm": "RSA", "signature": "AAAA"})],
)
def test_a_broken_signature_file_is_refused(pushed, keys, content):
    (pushed / signing.SIGNATURE_FILENAME).write_text(content)
    with pytest.raises(ManifestError, match=signing.SIGNATURE_FILENAME):
        load_model_dir(pushed, trusted_keys=[keys["public"]])


def test_rotation_trusts_old_and_new_keys_side_by_side(pushed, keys):
    _sign(pushed, keys["other_private"])  # signed with the new key
    both = [keys["public"], keys["other_public"]]
    assert load_model_dir(pushed, trusted_keys=both).signed_by == signing.key_id(
        signing.load_public_key(keys["other_public"]))
    with pytest.raises(ManifestError):
        load_model_dir(pushed, trusted_keys=[keys["public"]])  # the old key alone refuses it


def test_trusted_keys_from_the_environment_may_be_several():
    both = f"/etc/cxr/old.pub.pem{os.pathsep}/etc/cxr/new.pub.pem"
    assert signing.trusted_keys_from_env({signing.TRUSTED_KEY_ENV: both}) == (
        "/etc/cxr/old.pub.pem", "/etc/cxr/new.pub.pem")
    assert signing.trusted_keys_from_env({}) == ()
    assert signing.trusted_keys_from_env({signing.TRUSTED_KEY_ENV: ""}) == ()


def test_unusable_keys_are_clear_errors(tmp_path, keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(ManifestError, match="cannot read the trusted key"):
        load_model_dir(tmp_path, trusted_keys=[tmp_path / "missing.pem"])
    with pytest.raises(signing.SignatureError, match="not a PEM private key"):
        signing.load_private_key(keys["public"])
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.pem").write_bytes(ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(signing.SignatureError, match="an Ed25519 key is needed"):
        signing.load_private_key(tmp_path / "ec.pem")
    (tmp_path / "enc.pem").write_bytes(ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(signing.SignatureError, match="is encrypted"):
        signing.load_private_key(tmp_path / "enc.pem")


def test_keys_made_with_openssl_work(pushed, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "ed25519", "-out", private], check=True)
    subprocess.run([openssl, "pkey", "-in", private, "-pubout", "-out", public], check=True)
    _sign(pushed, private)
    assert load_model_dir(pushed, trusted_keys=[public]).signed_by


def test_without_the_cryptography_package_the_message_says_what_to_install(monkeypatch, keys):
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives", None)
    with pytest.raises(signing.SignatureError, match=r"pip install 'cxr-edge\[signing\]'"):
        signing.load_public_key(keys["public"])


# ---------------------------------------------------------------------------- the CLI


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_keygen_sign_and_trusted_key(pushed, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.delenv(signing.TRUSTED_KEY_ENV, raising=False)
    monkeypatch.delenv(signing.SIGNING_KEY_ENV, raising=False)
    Image.fromarray(radiograph_like(40, 30)).save(tmp_path / "x.png")
    code, _, err = _run(capsys, "keygen", "--out", tmp_path / "k")
    private = tmp_path / "k" / signing.PRIVATE_KEY_FILENAME
    public = tmp_path / "k" / signing.PUBLIC_KEY_FILENAME
    assert code == 0 and str(private) in err and str(public) in err

    # Unsigned: refused by flag and by environment; accepted without a trusted key.
    code, out, err = _run(capsys, "classify", "--model", pushed, tmp_path / "x.png",
                          "--trusted-key", public)
    assert code == cli.EXIT_USAGE and out == "" and "is not signed" in err
    monkeypatch.setenv(signing.TRUSTED_KEY_ENV, str(public))
    for command in (["info"], ["bench", "--runs", "1"]):
        code, _, err = _run(capsys, *command, "--model", pushed)
        assert code == cli.EXIT_USAGE and "is not signed" in err, command

    code, _, err = _run(capsys, "sign", "--model", pushed)
    assert code == cli.EXIT_USAGE and signing.SIGNING_KEY_ENV in err  # no key: says how
    code, _, err = _run(capsys, "sign", "--model", pushed, "--key", private)
    assert code == 0 and (pushed / signing.SIGNATURE_FILENAME).is_file()
    code, out, err = _run(capsys, "classify", "--model", pushed, tmp_path / "x.png",
                          "--format", "json")
    assert code == 0 and json.loads(out)[0]["status"] == "ok"
    assert "signed by trusted key" in err
    code, _, _ = _run(capsys, "info", "--model", pushed)
    assert code == 0


def test_cli_sign_refuses_a_directory_that_does_not_verify(pushed, keys, capsys):
    shutil.copy(model_path("fp32"), pushed / spec.MODEL_FILENAME)
    code, _, err = _run(capsys, "sign", "--model", pushed, "--key", keys["private"])
    assert code == cli.EXIT_USAGE and "does not match its manifest" in err
    assert not (pushed / signing.SIGNATURE_FILENAME).exists()
