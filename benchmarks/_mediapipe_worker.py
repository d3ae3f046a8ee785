"""Runs MediaPipe Pose over one video and saves per-frame results (used by vs_mediapipe.py).

This file runs inside the separate MediaPipe virtualenv (numpy<2, jax, ...), so it imports nothing
from streampose.  Decoding is not timed: only ``pose.process`` is, per frame, as for streampose.
"""
import argparse
import resource
import time

import cv2
import mediapipe as mp
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()

    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        raise SystemExit(f"cannot open {args.video}")
    landmarks, world, latencies, times = [], [], [], []
    # The Pose solution's video defaults: tracking on, smoothing on; model_complexity=1 = "full".
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True) as pose:
        index = 0
        while args.max_frames is None or index < args.max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            height, width = rgb.shape[:2]
            started = time.perf_counter()
            result = pose.process(rgb)
            latencies.append(time.perf_counter() - started)
            times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            if result.pose_landmarks is None:
                landmarks.append(np.full((33, 4), np.nan, np.float32))
                world.append(np.full((33, 3), np.nan, np.float32))
            else:
                landmarks.append(np.array(
                    [[p.x * width, p.y * height, p.z * width, p.visibility] for p in result.pose_landmarks.landmark],
                    np.float32))
                world.append(np.array([[p.x, p.y, p.z] for p in result.pose_world_landmarks.landmark], np.float32))
            index += 1
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    np.savez(args.out, landmarks33=np.array(landmarks), world33=np.array(world), latencies=np.array(latencies),
             times=np.array(times), peak_rss_mb=peak_rss_mb)


if __name__ == "__main__":
    main()
