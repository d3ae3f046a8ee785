"""Refiner training: synthetic renders of mocap bodies (``render``), the dataset built from them
(``dataset``) and the trainer / evaluation (``python -m streampose_train.refiner.train``)."""
