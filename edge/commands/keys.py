"""`cxr-edge keygen` and `cxr-edge sign`: the Ed25519 keys and signatures (signing extra)."""

from __future__ import annotations

import os
import sys

from edge import signing, spec
from edge.commands.common import EXIT_OK, EXIT_USAGE
from edge.manifest import load_model_dir


def keygen_command(args) -> int:
    private_path, public_path = signing.generate_keypair(args.out)
    key = signing.load_public_key(public_path)
    print(f"cxr-edge: key {signing.key_id(key)}\n"
          f"  private: {private_path}  (the pipeline's ${signing.SIGNING_KEY_ENV}; keep secret)\n"
          f"  public:  {public_path}  (the devices' --trusted-key / ${signing.TRUSTED_KEY_ENV})",
          file=sys.stderr)
    return EXIT_OK


def sign_command(args) -> int:
    key_path = args.key or os.environ.get(signing.SIGNING_KEY_ENV)
    if not key_path:
        print(f"cxr-edge: give --key or set ${signing.SIGNING_KEY_ENV}", file=sys.stderr)
        return EXIT_USAGE
    private_key = signing.load_private_key(key_path)
    model = load_model_dir(args.model)  # never vouch for a directory that does not verify
    if model.manifest is None:
        print(f"cxr-edge: {args.model} is not a model directory with a manifest",
              file=sys.stderr)
        return EXIT_USAGE
    path = signing.sign_manifest(args.model, private_key, spec.MANIFEST_FILENAME)
    print(f"cxr-edge: wrote {path} (key {signing.key_id(private_key)})", file=sys.stderr)
    return EXIT_OK
