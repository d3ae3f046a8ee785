"""``python -m streampose`` is the ``streampose`` command."""
import sys

from streampose.cli import main

sys.exit(main())
