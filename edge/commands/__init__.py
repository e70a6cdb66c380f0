"""The subcommands of `cxr-edge`, one module each; edge/cli.py parses the arguments and
dispatches here."""
