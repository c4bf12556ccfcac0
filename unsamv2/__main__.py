"""``python -m unsamv2`` is the same as the ``unsamv2`` command."""

import sys

from unsamv2.cli import main

sys.exit(main())
