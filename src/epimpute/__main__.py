"""``python -m epimpute``: the command line (see :mod:`epimpute.cli`)."""

import sys

from epimpute.cli import main

sys.exit(main())
