"""``python -m epimpute``: the same command line as ``epimpute``."""

import sys

from epimpute.cli import main

sys.exit(main())
