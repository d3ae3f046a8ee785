"""Exports of pipeline results to other tools' formats (BVH for Blender, Unity, MotionBuilder)."""
from streampose.export.bvh import BvhWriter, retarget, write_bvh

__all__ = ["BvhWriter", "retarget", "write_bvh"]
