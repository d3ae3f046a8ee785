"""``streampose batch``: many videos, one output each, a manifest, resumable; local pool or Ray.

Library use::

    from streampose.batch import BatchOptions, run_batch
    result = run_batch(BatchOptions(inputs=["clips/"], out_dir="poses/"))

See :mod:`streampose.batch.run` (skip rules), :mod:`streampose.batch.manifest` (the record),
:mod:`streampose.batch.local` and :mod:`streampose.batch.ray_engine` (the engines), and docs/BATCH.md.
"""
from streampose.batch.inputs import Video, expand_inputs
from streampose.batch.run import BatchOptions, BatchResult, run_batch

__all__ = ["BatchOptions", "BatchResult", "Video", "expand_inputs", "run_batch"]
