"""``python -m epimpute``: the ``epimpute`` command."""

import sys

from epimpute.cli import main

sys.exit(main())
