"""``python -m whitegoodsd``: the same as the ``whitegoodsd`` command."""

import sys

from whitegoodsd.cli import main

sys.exit(main())
