"""``python -m s2p_utils.cli``: the same as the ``s2p`` command."""

import sys

from s2p_utils.cli import main

sys.exit(main())
