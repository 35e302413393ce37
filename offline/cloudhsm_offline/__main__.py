"""``python -m cloudhsm_offline``: see ``cloudhsm_offline.cli``."""

import sys

from cloudhsm_offline.cli import main

sys.exit(main())
