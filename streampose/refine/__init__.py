"""Stage 4: patch-based 3D pose refinement (Wan et al., "Patch-based 3D Human Pose Refinement").

Public API: :func:`load_refiner` -> :class:`Refiner` with ``refine`` / ``refine_batch``.  The
building blocks (crops, part maps, orientation math, renderer, training) live in the submodules.
"""
from streampose.refine.api import Refiner, load_refiner

__all__ = ["Refiner", "load_refiner"]
