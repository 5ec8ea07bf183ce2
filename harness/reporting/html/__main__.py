"""``python -m harness.reporting.html``: runs the command line (``harness.reporting.html.cli``)."""

import sys

from harness.reporting.html.cli import main

sys.exit(main())
