"""``python -m rtlab``: the ``rtlab`` command, where its script is not on PATH."""

import sys

from rtlab.cli import main

sys.exit(main())
