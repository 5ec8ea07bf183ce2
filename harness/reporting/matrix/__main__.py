"""``python -m harness.reporting.matrix``: runs the command line (``harness.reporting.matrix.cli``)."""

import sys

from harness.reporting.matrix.cli import main

sys.exit(main())
