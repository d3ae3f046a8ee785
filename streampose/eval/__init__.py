"""Evaluation entry points (``python -m streampose.eval.lifter``)."""
