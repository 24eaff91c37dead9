"""``python -m epimpute``: the same as the ``epimpute`` command."""

import sys

from epimpute.cli import main

sys.exit(main())
