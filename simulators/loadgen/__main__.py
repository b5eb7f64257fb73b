"""``python -m simulators.loadgen``: the load generator's command line."""

import sys

from simulators.loadgen.cli import main

sys.exit(main())
