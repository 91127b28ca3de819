"""``python -m clv_models.cli``: the same as the ``clv`` command."""

import sys

from clv_models.cli import main

sys.exit(main())
