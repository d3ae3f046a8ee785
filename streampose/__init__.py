"""streampose: real-time and offline 3D human pose from ordinary video.

``from streampose import Pipeline`` is the entry point for applications; the records it yields are
in :mod:`streampose.types`.
"""
import os as _os

__version__ = "0.1.0"

# Idle OpenMP workers must sleep, not spin: streampose runs decode, models and post-processing in
# separate threads, and spinning torch workers starved them (2-thread BlazePose landmark step 206 ms
# with the default policy vs ~30 ms with PASSIVE on a 2-core machine).  Only effective when set
# before torch is first imported; a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["Pipeline", "PipelineConfig", "PoseFrame", "Person", "__version__"]


def __getattr__(name: str):
    # Lazy: importing streampose must not load torch and every model stage.
    if name in ("Pipeline", "PipelineConfig"):
        from streampose import pipeline

        return getattr(pipeline, name)
    if name in ("PoseFrame", "Person"):
        from streampose import types

        return getattr(types, name)
    raise AttributeError(f"module 'streampose' has no attribute {name!r}")
