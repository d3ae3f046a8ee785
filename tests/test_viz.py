"""2D overlay, 3D panel, composition, overlay video writer and the JSONL plot (all synthetic inputs)."""
from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from streampose.errors import OutputError
from streampose.apps.plot import load_track, plot_jsonl, plot_main
from streampose.skeleton import H36M17
from streampose.types import Person, PoseFrame
from streampose.viz import (
    CENTRE_COLOR, LEFT_COLOR, PANEL_BACKGROUND, RIGHT_COLOR, OverlayWriter, compose_side_by_side,
    draw_people, draw_skeleton_2d, render_pose_frame, render_skeleton_3d, rgb_to_yuv420p,
)

# A person facing the camera, right arm raised: metres, camera axes (x right, y down, z forward),
# root-relative.  Facing the camera, the person's left side is at +x.
POSE3D = np.array([
    (0, 0, 0), (-0.13, 0, 0), (-0.14, 0.45, 0), (-0.15, 0.88, 0.05), (0.13, 0, 0), (0.14, 0.45, 0),
    (0.15, 0.88, 0.05), (0, -0.23, 0), (0, -0.48, 0), (0, -0.58, -0.08), (0, -0.72, -0.02),
    (0.18, -0.45, 0), (0.25, -0.2, 0), (0.28, 0.02, -0.1), (-0.18, -0.45, 0), (-0.3, -0.65, 0),
    (-0.35, -0.9, 0),
], dtype=np.float64)
ROOT = np.array([0.0, 0.2, 3.5])


def project(pose3d=POSE3D, root=ROOT, focal=500.0, centre=(320.0, 240.0), conf=0.9) -> np.ndarray:
    """``(17, 3)`` metres -> ``(17, 3)`` pixels + confidence with a pinhole camera."""
    cam = pose3d + root
    uv = cam[:, :2] / cam[:, 2:] * focal + np.asarray(centre)
    return np.concatenate([uv, np.full((len(uv), 1), conf)], axis=1)


def _is_color(pixel, color, tol=40) -> bool:
    return bool(np.abs(pixel.astype(int) - np.asarray(color)).max() <= tol)


# ------------------------------------------------------------------------------------------- 2D


def test_draw_2d_changes_pixels_at_joints_and_leaves_corners_alone():
    image = np.full((480, 640, 3), 128, np.uint8)
    original = image.copy()
    kp = project()
    out = draw_skeleton_2d(image, kp)
    assert out is image  # documented: drawn in place
    for x, y, _ in kp:
        assert not np.array_equal(image[int(round(y)), int(round(x))], original[int(round(y)), int(round(x))])
    changed = np.any(image != original, axis=2)
    # Nothing drawn outside the skeleton's bounding box (plus line width).
    x0, y0 = kp[:, :2].min(axis=0) - 12
    x1, y1 = kp[:, :2].max(axis=0) + 12
    outside = changed.copy()
    outside[int(y0):int(y1), int(x0):int(x1)] = False
    assert not outside.any()
    for corner in (image[:20, :20], image[:20, -20:], image[-20:, :20], image[-20:, -20:]):
        assert np.all(corner == 128)


def test_draw_2d_side_colours_follow_the_person_left_and_right():
    image = np.zeros((480, 640, 3), np.uint8)
    kp = project()
    draw_skeleton_2d(image, kp, thickness=5, outline=False)

    def bone_mid(a, b):
        x, y = (kp[H36M17.index(a), :2] + kp[H36M17.index(b), :2]) / 2
        return image[int(round(y)), int(round(x))]

    assert _is_color(bone_mid("LElbow", "LWrist"), LEFT_COLOR)
    assert _is_color(bone_mid("RElbow", "RWrist"), RIGHT_COLOR)
    assert _is_color(bone_mid("LKnee", "LFoot"), LEFT_COLOR)
    assert _is_color(bone_mid("Spine", "Thorax"), CENTRE_COLOR)


def test_draw_2d_skips_low_confidence_joints_and_their_bones():
    kp = project()
    wrist = H36M17.index("RWrist")
    kp[wrist, 2] = 0.1
    image = np.zeros((480, 640, 3), np.uint8)
    draw_skeleton_2d(image, kp, min_confidence=0.3)
    x, y = kp[wrist, :2]
    elbow = kp[H36M17.index("RElbow"), :2]
    # A point on the elbow->wrist bone near the wrist stays blank; the elbow itself is drawn.
    px, py = elbow + 0.8 * (kp[wrist, :2] - elbow)
    assert np.all(image[int(round(py)), int(round(px))] == 0)
    assert np.all(image[int(round(y)), int(round(x))] == 0)
    assert image[int(round(elbow[1])), int(round(elbow[0]))].any()


def test_draw_2d_tolerates_nan_and_far_away_keypoints_and_rejects_bad_shapes():
    kp = project()
    kp[3, :2] = np.nan
    kp[6, :2] = 1e9
    image = np.zeros((240, 320, 3), np.uint8)
    draw_skeleton_2d(image, kp)  # no exception, nothing absurd drawn
    with pytest.raises(ValueError, match=r"\(17, 3\)"):
        draw_skeleton_2d(image, np.zeros((16, 3)))
    with pytest.raises(ValueError, match="uint8"):
        draw_skeleton_2d(image.astype(np.float32), kp)
    with pytest.raises(ValueError, match="contiguous"):
        draw_skeleton_2d(image[..., ::-1], kp)  # a BGR view cannot be drawn on in place


def test_draw_people_draws_box_and_id_tag():
    image = np.zeros((480, 640, 3), np.uint8)
    kp = project()
    box = np.array([200.0, 60.0, 440.0, 420.0])
    draw_people(image, [Person(id=3, score=0.9, bbox=box, keypoints2d=kp)])
    assert image[240, 200].any() and image[240, 440].any()  # box edges
    tag = image[30:60, 200:260]
    assert tag.reshape(-1, 3).any(axis=1).mean() > 0.3  # filled label tag above the box


# ------------------------------------------------------------------------------------------- 3D


def _foreground(panel):
    return np.any(np.abs(panel.astype(int) - np.asarray(PANEL_BACKGROUND)) > 30, axis=2)


def test_render_3d_is_deterministic_and_the_right_size():
    a = render_skeleton_3d(POSE3D, (320, 240), 37.0, 15.0)
    b = render_skeleton_3d(POSE3D, (320, 240), 37.0, 15.0)
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.array_equal(render_skeleton_3d(POSE3D, (200, 200), 0.0), render_skeleton_3d(POSE3D, (200, 200), 360.0))
    assert not np.array_equal(a, render_skeleton_3d(POSE3D, (320, 240), 90.0, 15.0))


def test_render_3d_is_upright_head_above_feet():
    panel = render_skeleton_3d(POSE3D, (400, 400), 0.0, 0.0, grid=False)
    amber = np.all(np.abs(panel.astype(int) - np.asarray(CENTRE_COLOR)) < 60, axis=2)
    rows_amber = np.flatnonzero(amber.any(axis=1))
    rows_fg = np.flatnonzero(_foreground(panel).any(axis=1))
    # Head (amber circle) near the top, feet (lowest drawn pixels) near the bottom.
    assert rows_amber.min() < 0.3 * 400
    assert rows_fg.max() > 0.7 * 400
    assert rows_amber.min() < rows_fg.max() - 200


def test_render_3d_left_side_turns_with_the_view():
    def mean_column(panel, color):
        mask = np.all(np.abs(panel.astype(int) - np.asarray(color)) < 70, axis=2)
        return np.flatnonzero(mask.any(axis=0)).mean()

    front = render_skeleton_3d(POSE3D, (400, 400), 0.0, 0.0, grid=False)
    back = render_skeleton_3d(POSE3D, (400, 400), 180.0, 0.0, grid=False)
    # Seen from the camera, the person's left (blue) is at +x = panel right; from behind it swaps.
    assert mean_column(front, LEFT_COLOR) > mean_column(front, RIGHT_COLOR) + 20
    assert mean_column(back, LEFT_COLOR) < mean_column(back, RIGHT_COLOR) - 20


def test_render_3d_draws_nearer_bones_over_farther_ones():
    # Two crossing limbs at different depths seen from the front: the near one must win the overlap.
    pose = np.full((17, 3), np.nan)
    pose[H36M17.index("Hip")] = (0, 0, 0)
    pose[H36M17.index("LHip")] = (0.3, 0, 0.3)  # left (blue) bone far
    pose[H36M17.index("RHip")] = (0.3, 0, -0.3)  # right (red) bone near, on top of it in view
    for kind in (0, 1):
        p = pose.copy()
        if kind:
            p[[H36M17.index("LHip"), H36M17.index("RHip")], 2] *= -1  # swap which is near
        panel = render_skeleton_3d(p, (300, 300), 0.0, 0.0, grid=False, thickness=6)
        px = panel[150 + int(round((0 - 0.15) * 300 / 2.4)), 150 + int(round(0.15 * 300 / 2.4))]
        near = RIGHT_COLOR if kind == 0 else LEFT_COLOR
        far = LEFT_COLOR if kind == 0 else RIGHT_COLOR
        assert np.abs(px.astype(int) - np.asarray(near)).sum() < np.abs(px.astype(int) - np.asarray(far)).sum()


def test_render_3d_several_people_missing_people_and_nan_joints():
    broken = POSE3D.copy()
    broken[5] = np.nan
    panel = render_skeleton_3d([POSE3D, None, broken], (480, 480), 20.0)
    assert panel.shape == (480, 480, 3)
    two = render_skeleton_3d(np.stack([POSE3D, POSE3D]), (480, 480), 0.0, 0.0, grid=False)
    cols = np.flatnonzero(_foreground(two).any(axis=0))
    assert cols.min() < 200 and cols.max() > 280  # spread apart, not drawn on top of each other
    placed = render_skeleton_3d([POSE3D, POSE3D], (480, 480), 0.0, 0.0, grid=False,
                                roots=[np.array([-1.5, 0, 4.0]), np.array([1.5, 0, 4.0])])
    cols_placed = np.flatnonzero(_foreground(placed).any(axis=0))
    assert cols_placed.max() - cols_placed.min() > cols.max() - cols.min()  # 3 m apart > default 1 m
    empty = render_skeleton_3d(None, (100, 80))
    assert empty.shape == (80, 100, 3)
    with pytest.raises(ValueError):
        render_skeleton_3d(np.zeros((16, 3)), (100, 100))


def test_render_3d_redraws_into_one_buffer_without_leftovers():
    # The live demo redraws the panel every frame; each redraw must fully replace the last one,
    # whether it goes into a reused ``out`` buffer or a fresh array.  (Speed: benchmarks/viz.py.)
    buffer = np.zeros((480, 480, 3), np.uint8)
    for azimuth in range(0, 360, 45):
        fresh = render_skeleton_3d(POSE3D, (480, 480), float(azimuth))
        reused = render_skeleton_3d(POSE3D, (480, 480), float(azimuth), out=buffer)
        assert reused is buffer
        assert np.array_equal(reused, fresh)
    # Drawing on a returned panel must not leak into later panels (the background is cached).
    scribbled = render_skeleton_3d(None, (480, 480))
    assert scribbled.flags.writeable
    scribbled[:] = 255
    assert np.all(render_skeleton_3d(None, (480, 480), grid=False) == np.asarray(PANEL_BACKGROUND))
    with pytest.raises(ValueError, match="expected"):
        render_skeleton_3d(POSE3D, (480, 480), out=np.zeros((240, 320, 3), np.uint8))


def test_compose_side_by_side_and_pose_frame_rendering():
    frame = np.full((240, 320, 3), 90, np.uint8)
    panel = np.full((480, 480, 3), 10, np.uint8)
    out = compose_side_by_side(frame, panel, ["12.0 fps", "latency 40 ms"])
    assert out.shape == (240, 320 + 240, 3)
    assert np.all(out[200:, 330:] == 10)  # panel resized to the frame height, untouched by text
    assert not np.array_equal(out[:30, :60], frame[:30, :60])  # text block drawn
    assert np.all(frame == 90)  # input not modified

    pf = PoseFrame(0, 0.0, [Person(0, 0.9, np.array([200, 50, 440, 420.0]), project(), POSE3D, ROOT)])
    image = np.zeros((480, 640, 3), np.uint8)
    rendered = render_pose_frame(image, pf, azimuth_deg=30.0)
    assert rendered.shape == (480, 640 + 480, 3)
    assert not image.any()
    assert rendered[:, :640].any() and _foreground(rendered[:, 640:]).any()


# ------------------------------------------------------------------------------------------- writer


def _decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        return frames, (stream.width, stream.height)


def test_overlay_writer_keeps_variable_frame_timestamps(tmp_path):
    times = [10.0, 10.033, 10.1, 10.2, 10.21, 10.5, 10.6]
    path = tmp_path / "vfr.mp4"
    with OverlayWriter(path, fps=30) as writer:
        for i, t in enumerate(times):
            writer.write(np.full((120, 160, 3), 20 + 30 * i, np.uint8), t)
    frames, size = _decode(path)
    assert size == (160, 120)
    assert len(frames) == len(times)
    decoded_times = np.array([t for t, _ in frames])
    np.testing.assert_allclose(decoded_times, np.array(times) - times[0], atol=1e-4)
    levels = [img.mean() for _, img in frames]
    np.testing.assert_allclose(levels, [20 + 30 * i for i in range(len(times))], atol=4)


def test_rgb_to_yuv420p_matches_ffmpeg_and_colours_survive_encoding(tmp_path):
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 255, (15, 20, 3), dtype=np.uint8), (200, 150), interpolation=cv2.INTER_CUBIC)
    ours = rgb_to_yuv420p(image)
    ffmpeg = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert ours.shape == ffmpeg.shape == (225, 200)
    assert np.abs(ours[:150].astype(int) - ffmpeg[:150]).max() <= 1  # luma
    assert np.abs(ours[150:].astype(int) - ffmpeg[150:]).max() <= 4  # chroma (2x2 mean vs FFmpeg's filter)
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420p(np.zeros((3, 4, 3), np.uint8))

    blocks = np.zeros((64, 192, 3), np.uint8)
    blocks[:, :64], blocks[:, 64:128], blocks[:, 128:] = LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR
    with OverlayWriter(tmp_path / "colours.mp4", fps=30) as writer:
        writer.write(blocks, 0.0)
    (_, decoded), = _decode(tmp_path / "colours.mp4")[0]
    for x, colour in ((32, LEFT_COLOR), (96, RIGHT_COLOR), (160, CENTRE_COLOR)):
        assert np.abs(decoded[32, x].astype(int) - np.asarray(colour)).max() <= 8


def test_overlay_writer_pads_odd_sizes_and_appends_the_3d_panel(tmp_path):
    path = tmp_path / "odd.mp4"
    with OverlayWriter(path, fps=25, view3d=True) as writer:
        pf = PoseFrame(0, 0.0, [Person(0, 0.9, np.array([0, 0, 1, 1.0]), project(centre=(80, 60)), POSE3D)])
        for i in range(4):
            writer.write(np.zeros((121, 161, 3), np.uint8), i / 25, pf)
        assert writer.output_size == (161 + 121 + 0, 122)
    frames, size = _decode(path)
    assert size == (282, 122) and len(frames) == 4
    assert frames[0][1][:, 161:].mean() > 10  # the 3D panel is there


def test_overlay_writer_checks_the_path_before_work(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        OverlayWriter(tmp_path / "missing" / "out.mp4", fps=30)
    with pytest.raises(OutputError, match="extension"):
        OverlayWriter(tmp_path / "out.txt", fps=30)
    with pytest.raises(OutputError, match="extension"):
        OverlayWriter(tmp_path / "out.avi", fps=30)  # AVI cannot keep per-frame timestamps
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputError, match="directory"):
        OverlayWriter(tmp_path / "dir.mp4", fps=30)
    writer = OverlayWriter(tmp_path / "empty.mp4", fps=30)
    writer.close()
    assert not (tmp_path / "empty.mp4").exists()  # nothing written -> no broken file left
    with OverlayWriter(tmp_path / "size.mp4", fps=30, size=(64, 48)) as writer:
        with pytest.raises(ValueError, match="64x48"):
            writer.write(np.zeros((50, 50, 3), np.uint8), 0.0)


# ------------------------------------------------------------------------------------------- plot


def _write_jsonl(path, frames=60, null_3d_until=10, truncate=True, with_3d=True):
    lines = [json.dumps({"type": "header", "schema": 1, "source": {"fps": 30.0}})]
    for i in range(frames):
        t = i / 30
        pose = POSE3D.copy()
        pose[H36M17.index("RWrist"), 2] = 0.3 * np.sin(2 * np.pi * t)
        kp3d = pose if with_3d and i >= null_3d_until else None
        person = Person(0, 0.9, np.array([0, 0, 1, 1.0]), project(pose), kp3d)
        other = Person(7, 0.5, np.array([0, 0, 1, 1.0]), project(pose) + [50, 0, 0], None)
        people = [person, other] if i % 3 == 0 else [person]
        lines.append(json.dumps(PoseFrame(i, t, people).to_dict()))
    text = "\n".join(lines) + "\n"
    if truncate:
        text += lines[-1][: len(lines[-1]) // 2]  # a run killed mid-write
    path.write_text(text)
    return path


def test_load_track_tolerates_truncation_and_null_3d(tmp_path):
    track = load_track(_write_jsonl(tmp_path / "poses.jsonl"))
    assert track.person_id == 0  # the longest track
    assert len(track.times) == 60
    assert np.isnan(track.keypoints3d[:10]).all() and np.isfinite(track.keypoints3d[10:]).all()
    wrist_z = track.keypoints3d[15, H36M17.index("RWrist"), 2]
    np.testing.assert_allclose(wrist_z, 0.3 * np.sin(2 * np.pi * 0.5), atol=1e-3)


def test_plot_jsonl_writes_a_png(tmp_path):
    png = plot_jsonl(_write_jsonl(tmp_path / "poses.jsonl"), tmp_path / "out.png", filmstrip_frames=5)
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 400 and image.shape[1] > 800
    assert image.std() > 10  # not a blank canvas
    png2d = plot_jsonl(_write_jsonl(tmp_path / "p2d.jsonl", with_3d=False), tmp_path / "out2d.png")
    assert cv2.imread(str(png2d)) is not None


def test_plot_main_exit_codes_and_one_line_errors(tmp_path, capsys):
    jsonl = _write_jsonl(tmp_path / "poses.jsonl", frames=20)
    assert plot_main([str(jsonl), "-o", str(tmp_path / "a.png"), "--frames", "3"]) == 0
    assert (tmp_path / "a.png").stat().st_size > 10_000
    assert plot_main([str(tmp_path / "missing.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert plot_main([str(jsonl), "--joints", "Elbow"]) == 1
    assert "unknown joint" in capsys.readouterr().err
    (tmp_path / "garbage.jsonl").write_text("hello\nworld\n")
    assert plot_main([str(tmp_path / "garbage.jsonl")]) == 1
    assert plot_main([str(jsonl), "-o", str(tmp_path / "nodir" / "x.png")]) == 1
