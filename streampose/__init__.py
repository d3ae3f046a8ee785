"""streampose: real-time and offline 3D human pose from ordinary video.

``from streampose import Pipeline`` is the entry point for applications; the records it yields are
in :mod:`streampose.types`.
"""
__version__ = "0.1.0"

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
