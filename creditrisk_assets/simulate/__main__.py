"""``python -m creditrisk_assets.simulate``."""

import sys

from .cli import main

sys.exit(main())
