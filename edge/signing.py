"""Ed25519 signatures on a pushed model directory: who pushed it, not only what it holds.

The manifest pins the model file (sha256), the class names and the input, so a signature over
the manifest's exact bytes vouches for the whole directory. The pipeline's pusher signs with a
private key it is given (CXR_SIGNING_KEY; never generated on its own); `cxr-edge`, given one or
more trusted public keys, refuses a directory whose signature is missing or does not verify.
Trusting several keys at once is how a key is rotated without a gap (README: "Signed models").

The cryptography is the `cryptography` package (the `signing` extra), imported only when a key
is used, so the plain edge install does not need it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

SIGNATURE_FILENAME = "manifest.sig"  # beside manifest.json
SIGNING_KEY_ENV = "CXR_SIGNING_KEY"  # the pusher's private key (PEM path)
TRUSTED_KEY_ENV = "CXR_TRUSTED_KEY"  # the device's public key(s), separated by os.pathsep
PRIVATE_KEY_FILENAME = "cxr-signing-key.pem"
PUBLIC_KEY_FILENAME = "cxr-signing-key.pub.pem"
ALGORITHM = "Ed25519"


class SignatureError(ValueError):
    """A key that cannot be used, or a model whose signature is missing or wrong."""


def generate_keypair(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Writes a new private key (mode 0600) and its public key into out_dir; never overwrites."""
    ed25519, serialization = _crypto()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_KEY_FILENAME, out / PUBLIC_KEY_FILENAME
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing:
        raise SignatureError(f"{', '.join(existing)} already exist; keys are never overwritten "
                             "(move them away first, or choose another --out)")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: the private key is never readable by others, not even briefly.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: str | os.PathLike):
    """An Ed25519 private key from an unencrypted PEM file (openssl genpkey -algorithm ed25519)."""
    ed25519, serialization = _crypto()
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as err:  # an encrypted key asks for a password
        raise SignatureError(f"signing key {path} is encrypted; give an unencrypted PEM key "
                             "kept readable only by the pipeline's user") from err
    except ValueError as err:
        raise SignatureError(f"signing key {path} is not a PEM private key: {err}") from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"signing key {path} is a {type(key).__name__}; an Ed25519 key is "
                             "needed (openssl genpkey -algorithm ed25519)")
    return key


def load_public_key(path: str | os.PathLike):
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo, `openssl pkey -pubout`)."""
    ed25519, serialization = _crypto()
    data = _read_key_file(path, "trusted key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as err:
        raise SignatureError(f"trusted key {path} is not a PEM public key: {err}") from err
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(f"trusted key {path} is a {type(key).__name__}; an Ed25519 "
                             "public key is needed")
    return key


def key_id(key) -> str:
    """A short fingerprint of a public (or private) key, for messages and push records."""
    _, serialization = _crypto()
    public = key.public_key() if hasattr(key, "public_key") else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_manifest(model_dir: str | os.PathLike, private_key, manifest_name: str) -> Path:
    """Signs model_dir/manifest_name's exact bytes; writes SIGNATURE_FILENAME beside it."""
    directory = Path(model_dir)
    signature = private_key.sign((directory / manifest_name).read_bytes())
    record = {
        "algorithm": ALGORITHM,
        "signed_file": manifest_name,
        "key_id": key_id(private_key),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    path = directory / SIGNATURE_FILENAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)  # a reader sees the old signature or the new one, never half
    return path


def verify_manifest(manifest_bytes: bytes, signature_path: Path, trusted_keys) -> str:
    """Returns the id of the trusted key that signed manifest_bytes; raises SignatureError.

    trusted_keys: public key objects (load_public_key). Any one of them may have signed.
    """
    _crypto()
    from cryptography.exceptions import InvalidSignature

    if not signature_path.is_file():
        raise SignatureError(
            f"{signature_path.parent} is not signed (no {SIGNATURE_FILENAME}) but a trusted key "
            "was given: only models signed by the pipeline are accepted"
        )
    try:
        record = json.loads(signature_path.read_text())
        signature = base64.b64decode(record["signature"], validate=True)
        algorithm = record.get("algorithm")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as err:
        raise SignatureError(f"{signature_path} is not a valid signature file: {err}") from err
    if algorithm != ALGORITHM:
        raise SignatureError(f"{signature_path} uses {algorithm!r}; this runner verifies "
                             f"{ALGORITHM} only")
    for key in trusted_keys:
        try:
            key.verify(signature, manifest_bytes)
        except InvalidSignature:
            continue
        return key_id(key)
    trusted = ", ".join(key_id(key) for key in trusted_keys)
    raise SignatureError(
        f"the signature in {signature_path} does not match its manifest under any trusted key "
        f"(it names key {str(record.get('key_id'))[:16]}; trusted: {trusted}). The manifest or "
        "its signature was changed, or the model was signed with a key this device does not "
        "trust. Refusing the model."
    )


def trusted_keys_from_env(environ=None) -> tuple[str, ...]:
    """The public key paths in CXR_TRUSTED_KEY (several separated by os.pathsep), or ()."""
    environ = os.environ if environ is None else environ
    raw = environ.get(TRUSTED_KEY_ENV, "")
    return tuple(part for part in raw.split(os.pathsep) if part.strip())


def _read_key_file(path: str | os.PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise SignatureError(f"cannot read the {what} {path}: {err.strerror or err}") from err


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:
        raise SignatureError(
            "model signatures need the cryptography package: pip install 'cxr-edge[signing]'"
        ) from err
    return ed25519, serialization
