"""Training entry points (``python -m streampose.train.lifter``)."""
