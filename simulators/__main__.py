"""``python -m simulators``: same as the ``csms-sim`` console script."""

import sys

from simulators.cli import main

sys.exit(main())
