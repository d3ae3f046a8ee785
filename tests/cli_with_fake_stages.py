"""Runs the real ``streampose`` CLI with fake model stages (for subprocess tests: signals, kills)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import fake_pipeline  # noqa: E402

from streampose import cli  # noqa: E402

cli.build_pipeline = fake_pipeline
sys.exit(cli.main())
