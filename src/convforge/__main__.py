"""``python -m convforge`` runs the command line."""

import sys

from convforge.cli import main

sys.exit(main())
