"""Evaluation entry points (``python -m streampose_train.eval.lifter``)."""
