"""``python -m retinakit.apps.serve [flags]``: the same as ``retinakit serve``."""

import sys

from retinakit.apps.serve.command import main

sys.exit(main())
