"""``python -m occcodec``."""

import sys

from occcodec.cli import main

sys.exit(main())
