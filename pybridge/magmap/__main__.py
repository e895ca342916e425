"""``python -m magmap``: same as the ``magmap`` command."""
import sys

from .cli import main

sys.exit(main())
