"""``python -m retinakit`` runs the command line."""

import sys

from retinakit.cli import main

sys.exit(main())
