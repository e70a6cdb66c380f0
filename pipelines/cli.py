"""`cxr-pipeline`: the command line of the pipeline side.

  cxr-pipeline demo-data --out DIR [--per-class N] [--size PX] [--seed S]
"""

import argparse
import sys

from components import demo_data


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="cxr-pipeline", description="Chest X-ray triage pipeline: data, training, edge push.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    demo_data.add_demo_data_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
