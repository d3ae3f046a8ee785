"""Deterministic stand-ins for the model stages, for tests of the plumbing around them.

``FakePose2D`` finds one person whose keypoints encode the frame's brightness (nobody on dark
frames); ``FakeLifter`` answers each frame ``lag`` frames late, like the symmetric lifter.
``fake_pipeline`` builds a real ``Pipeline`` around them (used by the CLI tests, also in a
subprocess through ``cli_with_fake_stages.py``).
"""
import time
from dataclasses import dataclass

import numpy as np

from streampose.types import Person2D


class FakePose2D:
    """One person whose keypoints encode the frame's mean brightness; nobody on dark frames."""

    def __init__(self, fail_at=None, delay=0.0):
        self.fail_at = fail_at
        self.delay = delay

    def process(self, frame):
        if self.delay:
            time.sleep(self.delay)
        if self.fail_at is not None and frame.index == self.fail_at:
            raise RuntimeError("boom in 2D")
        level = float(frame.image.mean())
        if level < 5:
            return []
        keypoints = np.zeros((17, 3), np.float32)
        keypoints[:, 0] = level + np.arange(17)
        keypoints[:, 1] = 2 * level
        keypoints[:, 2] = 1.0
        return [Person2D(bbox=np.array([10, 10, 60, 110], np.float32), score=0.9, keypoints2d=keypoints)]


@dataclass
class FakeResult:
    keypoints3d: np.ndarray
    root: np.ndarray | None


class FakeStream:
    """Answers each frame ``lag`` frames late, like the symmetric lifter."""

    def __init__(self, lag, fail_at=None):
        self.lag = lag
        self.fail_at = fail_at
        self.buffer = []
        self.seen = 0

    def _result(self, kp2d):
        kp3d = np.zeros((17, 3), np.float32)
        kp3d[:, 0] = kp2d[:, 0] / 1000.0
        return FakeResult(kp3d - kp3d[:1], np.array([0, 0, 3.0], np.float32))

    def push(self, kp2d):
        if self.fail_at is not None and self.seen == self.fail_at:
            raise ValueError("boom in lifter")
        self.seen += 1
        self.buffer.append(kp2d.copy())
        if len(self.buffer) > self.lag:
            return [self._result(self.buffer.pop(0))]
        return []

    def flush(self):
        out = [self._result(k) for k in self.buffer]
        self.buffer = []
        return out


class FakeLifter:
    receptive_field = 9

    def __init__(self, lag=4, fail_at=None):
        self.lag = lag
        self.fail_at = fail_at

    def stream(self, image_size):
        return FakeStream(self.lag, self.fail_at)


def fake_pipeline(args, live):
    """Drop-in for ``streampose.cli.build_pipeline``: the real Pipeline, configured from the options
    as the CLI does, around fake stages."""
    from streampose.cli import pipeline_config
    from streampose.pipeline import Pipeline

    return Pipeline(pipeline_config(args, live), device="cpu", pose2d=FakePose2D(), lifter=FakeLifter())
