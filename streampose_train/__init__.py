"""streampose's training and evaluation: mocap data, filming it through virtual cameras, trainers,
evaluation on held-out clips and measurements of BlazePose on real video.

The runtime package (``streampose``) never imports this one; it is shipped so that users can train
and evaluate their own weights (``python -m streampose_train.lifter --help``).
"""
