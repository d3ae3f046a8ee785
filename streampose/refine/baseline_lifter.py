"""Fallback initial-pose lifter for building refiner training data.

The refiner must be trained on the errors of a real lifter run on noisy 2D (never on ground truth
plus made-up noise).  When the project's temporal lifter (``streampose.lifter``) has no trained
weights yet, this single-frame MLP (Martinez et al.-style: 2 residual blocks) is trained on the
*training* clips only and used instead.  It is deliberately simple and is not part of the pipeline.

Input: ``(T, 17, 3)`` pixel keypoints, centred on the 2D hip and divided by the 2D bounding-box
height; output ``(T, 17, 3)`` root-relative camera-axes metres.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from streampose.refine.dataset import film


def normalise_2d(kp2d: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(T, 17, 2+)`` pixels -> ``(T, 34)`` hip-centred, height-normalised coordinates."""
    xy = torch.as_tensor(np.asarray(kp2d)[..., :2], dtype=torch.float32)
    centred = xy - xy[:, :1]
    height = (xy[..., 1].max(1).values - xy[..., 1].min(1).values).clamp_min(1.0)
    return (centred / height[:, None, None]).reshape(len(xy), -1)


class MlpLifter(nn.Module):
    """``(N, 34) -> (N, 17, 3)``."""

    def __init__(self, hidden: int = 512, dropout: float = 0.2):
        super().__init__()
        self.inp = nn.Linear(34, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
                          nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout))
            for _ in range(2))
        self.out = nn.Linear(hidden, 51)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).reshape(-1, 17, 3)


def _pairs(clips: list[np.ndarray], fps: list[float], rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = [], []
    for world, rate in zip(clips, fps):
        _, cam, noisy = film(rng, world, rate)
        inputs.append(normalise_2d(noisy))
        targets.append(torch.from_numpy(cam - cam[:, :1]))
    return torch.cat(inputs), torch.cat(targets)


def train_mlp_lifter(clips: list[np.ndarray], fps: list[float], *, rounds: int = 6, steps_per_round: int = 300,
                     seed: int = 0, log: Callable[[str], None] = print) -> MlpLifter:
    """Train on fresh random cameras each round.

    Args:
        clips: training clips, ``(T, 17, 3)`` world metres, Y up.
        fps: their frame rates.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = MlpLifter()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, rounds * steps_per_round)
    started = time.perf_counter()
    for r in range(rounds):
        x, y = _pairs(clips, fps, rng)
        model.train()
        for _ in range(steps_per_round):
            idx = torch.randint(0, len(x), (256,))
            loss = (model(x[idx]) - y[idx]).norm(dim=-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        log(f"  mlp lifter round {r + 1}/{rounds}: train MPJPE {loss.item() * 1000:.1f} mm "
            f"({time.perf_counter() - started:.0f} s)")
    return model.eval()


def as_lift_fn(model: MlpLifter) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    """Wrap as :data:`streampose.refine.dataset.LiftFn` (image size unused: input is normalised)."""

    def lift(kp2d: np.ndarray, image_size: tuple[int, int] | None = None) -> np.ndarray:
        with torch.no_grad():
            return model(normalise_2d(kp2d)).numpy()

    return lift
