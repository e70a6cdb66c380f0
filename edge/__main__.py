"""`python -m edge` runs the cxr-edge command line."""

import sys

from edge.cli import main

sys.exit(main())
