"""Test-wide setup: shared-data skipping, synthetic-video helpers on the import path.

* Tests marked ``@pytest.mark.shared`` need ``../shared`` beside the repository (papers, mocap,
  videos); they are skipped cleanly when it is absent, so the core suite runs on a fresh machine.
* ``tests/`` is put on ``sys.path`` so every test can ``from videogen import make_video``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


def pytest_collection_modifyitems(config, items):
    if SHARED_DIR.is_dir():
        return
    skip = pytest.mark.skip(reason=f"shared data not available ({SHARED_DIR} is absent)")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (tests using it must be marked ``shared``)."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data not available ({SHARED_DIR} is absent)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def blazepose():
    """The BlazePose weights (fetched once into the cache); the test is skipped without them."""
    from streampose.errors import ModelError
    from streampose.pose2d.weights import ensure_blazepose_models

    try:
        ensure_blazepose_models()
    except ModelError as exc:
        pytest.skip(f"BlazePose weights unavailable: {exc}")
