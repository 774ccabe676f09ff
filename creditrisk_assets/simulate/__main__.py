"""``python -m creditrisk_assets.simulate``: the same as ``creditrisk simulate``."""

import sys

from ..cli import main

sys.exit(main(["simulate", *sys.argv[1:]]))
