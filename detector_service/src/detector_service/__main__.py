"""``python -m detector_service`` is the ``detector-service`` command."""

from detector_service.cli import main

import sys


sys.exit(main())
