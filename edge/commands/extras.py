"""`cxr-edge export-android` and `cxr-edge serve`: each imports its extra only when run."""

from __future__ import annotations

import sys

from edge.commands.common import EXIT_OK, EXIT_USAGE
from edge.serve import options as serve_options  # standard library only; the web stack is not


def export_android_command(args) -> int:
    # the android extra: imported only here
    from edge.android import export_android, referral_path

    try:
        out = export_android(args.model, args.out, ood_threshold=args.ood_threshold,
                             refer_below=args.refer_below,
                             site_calibration=args.site_calibration)
    except ImportError as err:
        print(f"cxr-edge: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"cxr-edge: wrote {out} (TFLite metadata for MediaPipe/LiteRT ImageClassifier) and "
          f"{referral_path(out)} (the referral rule and thresholds for the app)",
          file=sys.stderr)
    return EXIT_OK


def serve_command(args) -> int:
    try:
        from edge.serve.server import serve  # the serve extra: imported only here
    except ImportError as err:
        print(f"cxr-edge: serve needs the serve extra (pip install '.[serve]'): {err}",
              file=sys.stderr)
        return EXIT_USAGE
    return serve(serve_options.from_args(args))
