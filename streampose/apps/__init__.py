"""Applications built on the streampose library, run by the ``streampose`` command:

* :mod:`streampose.apps.demo` -- ``streampose webcam``: the live demo (camera or video file -> 2D
  overlay and an orbiting 3D view, in a window or saved headless);
* :mod:`streampose.apps.plot` -- ``streampose plot``: joint trajectories and a 3D skeleton filmstrip
  from a JSONL pose file, as a PNG.

They live in the package rather than in ``demos/`` so the installed command can run them; the
drawing itself is :mod:`streampose.viz`.
"""
