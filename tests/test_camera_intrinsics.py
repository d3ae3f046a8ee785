"""Camera intrinsics in: --fov / --intrinsics / --calibration, the assumed camera, undistortion, and the
header's camera record; bad values give one clear line."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from streampose import cli
from streampose.camera import (
    ASSUMED_FOV_DEG, Calibration, CameraIntrinsics, CameraOptions, check_fov, load_calibration,
    parse_intrinsics, project_to_2d, undistort_normalized, undistort_points,
)
from streampose.errors import InputError
from streampose.output import read_jsonl
from streampose.settings import PipelineConfig, SettingError
from videogen import make_video

OPENCV_YAML = """%YAML:1.0
---
image_width: 640
image_height: 480
camera_matrix: !!opencv-matrix
   rows: 3
   cols: 3
   dt: d
   data: [ 500., 0., 320.,
           0., 505., 240., 0., 0., 1. ]
distortion_coefficients: !!opencv-matrix
   rows: 1
   cols: 5
   dt: d
   data: [ -0.1, 0.01, 0.001, -0.002, 0.003 ]
"""

ROS_YAML = """image_width: 640
image_height: 480
camera_name: narrow_stereo  # a comment
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 320.0, 0.0, 505.0, 240.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1, 0.01, 0.001, -0.002, 0.003]
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------- parsing the values


def test_parse_intrinsics_and_fov():
    assert parse_intrinsics("1000,1001.5, 640 ,360") == (1000.0, 1001.5, 640.0, 360.0)
    assert parse_intrinsics([800, 800, 320, 240]) == (800.0, 800.0, 320.0, 240.0)
    for bad in ("1000,1000,640", "a,b,c,d", "1000,1000,640,360,1", "0,1000,640,360", "-5,5,1,1",
                "nan,1,1,1", ""):
        with pytest.raises(InputError, match="intrinsics"):
            parse_intrinsics(bad)
    assert check_fov(60) == 60.0
    for bad in (-10, 0, 180, 200, "60", True, None):
        with pytest.raises(InputError, match="fov"):
            check_fov(bad)


def test_fov_and_intrinsics_resolve_to_the_hand_computed_camera():
    model = CameraOptions(fov=90.0).resolve(1280, 720)
    assert model.source == "given" and model.how == "fov"
    assert model.intrinsics.fx == pytest.approx(640.0) and model.intrinsics.fy == pytest.approx(640.0)
    assert (model.intrinsics.cx, model.intrinsics.cy) == (639.5, 359.5)
    model = CameraOptions(intrinsics=(1000, 1010, 600, 350)).resolve(1280, 720)
    k = model.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (1000, 1010, 600, 350, 1280, 720)
    with pytest.raises(InputError, match="once"):
        CameraOptions(fov=60.0, intrinsics=(1, 1, 1, 1))


def test_assumed_camera_uses_the_long_side_and_states_its_uncertainty():
    landscape = CameraOptions().resolve(1920, 1080)
    portrait = CameraOptions().resolve(1080, 1920)
    f = 1920 / (2 * math.tan(math.radians(ASSUMED_FOV_DEG) / 2))
    assert landscape.source == "assumed" and landscape.intrinsics.fx == pytest.approx(f)
    assert portrait.intrinsics.fx == pytest.approx(f)  # same lens, phone held upright
    low, high = landscape.fx_range
    assert low == pytest.approx(1920 / (2 * math.tan(math.radians(42.5))))  # 85 degrees
    assert high == pytest.approx(1920 / (2 * math.tan(math.radians(25.0))))  # 50 degrees
    assert low < f < high
    assert landscape.relative_uncertainty == pytest.approx(max(f - low, high - f) / f)
    header = landscape.to_header()
    assert header["source"] == "assumed" and header["fx"] == pytest.approx(f, abs=1e-3)
    assert header["fx_range"] == [pytest.approx(low, abs=1e-3), pytest.approx(high, abs=1e-3)]
    given = CameraOptions(fov=70.0).resolve(640, 480).to_header()
    assert given["source"] == "given" and "fx_range" not in given


# ------------------------------------------------------------------------------- calibration files


@pytest.mark.parametrize("name,text", [("opencv.yaml", OPENCV_YAML), ("ros.yml", ROS_YAML)])
def test_yaml_calibrations(tmp_path, name, text):
    calibration = load_calibration(_write(tmp_path, name, text))
    assert calibration.size == (640, 480)
    np.testing.assert_allclose(calibration.matrix, [[500, 0, 320], [0, 505, 240], [0, 0, 1]])
    assert calibration.distortion == (-0.1, 0.01, 0.001, -0.002, 0.003)
    k = calibration.intrinsics(640, 480)
    assert (k.fx, k.fy, k.cx, k.cy) == (500, 505, 320, 240)
    assert (k.k1, k.k2, k.p1, k.p2, k.k3) == (-0.1, 0.01, 0.001, -0.002, 0.003)


def test_json_calibrations(tmp_path):
    nested = {"K": [[800, 0, 400], [0, 810, 300], [0, 0, 1]], "dist": [0.05, -0.01, 0, 0],
              "width": 800, "height": 600}
    calibration = load_calibration(_write(tmp_path, "c.json", json.dumps(nested)))
    assert calibration.intrinsics(800, 600).fy == 810 and calibration.distortion == (0.05, -0.01, 0, 0, 0)
    flat = {"fx": 700, "fy": 700, "cx": 320, "cy": 240}
    calibration = load_calibration(_write(tmp_path, "d.json", json.dumps(flat)))
    assert calibration.size is None and calibration.distortion == (0, 0, 0, 0, 0)
    assert calibration.intrinsics(640, 480).fx == 700


def test_calibration_scales_to_a_resized_video_and_rejects_another_aspect(tmp_path):
    calibration = load_calibration(_write(tmp_path, "c.yaml", OPENCV_YAML))
    half = calibration.intrinsics(320, 240)
    # Pixel centres: x_half = (x + 0.5) / 2 - 0.5.
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 252.5, 159.75, 119.75)
    with pytest.raises(InputError, match="aspect"):
        calibration.intrinsics(640, 360)


@pytest.mark.parametrize("text,message", [
    ("camera_matrix: [1, 2, 3\n", "unclosed"),
    ("camera_matrix: [500, 0, 320, 0, 505, 240, 0, 0]\n", "9 numbers"),
    ("image_width: 640\n", "no camera matrix"),
    ("camera_matrix: [500, 0, 320, 0, 505, 240, 0, 0, 1]\ndistortion_coefficients: [0.1, 0.2, 0.3]\n",
     "4, 5 or 8"),
    ("camera_matrix: [500, 0, 320, 0, abc, 240, 0, 0, 1]\n", "must be a number"),
    ("camera_matrix: [-500, 0, 320, 0, 505, 240, 0, 0, 1]\n", "positive focal"),
    ("camera_matrix: [500, 0, 320, 0, 505, 240, 0, 0, 2]\n", "0 0 1"),
    ("  camera_matrix: [500, 0, 320, 0, 505, 240, 0, 0, 1]\n image_width: 3\n", "indentation"),
    ("just some words\n", "key: value"),
])
def test_malformed_yaml_gives_one_line_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError, match=message) as caught:
        load_calibration(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_malformed_json_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="not valid JSON"):
        load_calibration(_write(tmp_path, "bad.json", '{"K": [1, 2,'))
    with pytest.raises(InputError, match="not found"):
        load_calibration(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------- distortion


def _camera() -> CameraIntrinsics:
    return CameraIntrinsics(fx=900, fy=910, cx=650, cy=355, width=1280, height=720,
                            k1=-0.12, k2=0.03, p1=0.002, p2=-0.001, k3=-0.004)


def test_projection_matches_opencv_with_tangential_terms():
    rng = np.random.default_rng(0)
    k = _camera()
    points = np.column_stack([rng.uniform(-1.5, 1.5, 50), rng.uniform(-0.8, 0.8, 50), rng.uniform(2, 6, 50)])
    ours = project_to_2d(points, k)
    theirs, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k.matrix, np.array(k.distortion))
    np.testing.assert_allclose(ours, theirs[:, 0], atol=1e-6)


def test_undistortion_inverts_the_distortion_and_matches_opencv():
    rng = np.random.default_rng(1)
    k = _camera()
    points = np.column_stack([rng.uniform(-1.5, 1.5, 50), rng.uniform(-0.8, 0.8, 50), rng.uniform(2, 6, 50)])
    distorted = project_to_2d(points, k)
    pinhole = project_to_2d(points, CameraIntrinsics(k.fx, k.fy, k.cx, k.cy, k.width, k.height))
    np.testing.assert_allclose(undistort_points(distorted, k), pinhole, atol=1e-6)
    np.testing.assert_allclose(undistort_normalized(distorted, k), points[:, :2] / points[:, 2:], atol=1e-9)
    theirs = cv2.undistortPoints(distorted[:, None].astype(np.float64), k.matrix, np.array(k.distortion),
                                 P=k.matrix)[:, 0]
    np.testing.assert_allclose(undistort_points(distorted, k), theirs, atol=1e-3)
    # A pinhole camera leaves pixels alone.
    plain = CameraIntrinsics.from_fov(640, 480, 60)
    np.testing.assert_array_equal(undistort_points(distorted, plain), distorted)


# ------------------------------------------------------------------------------- config and CLI


def test_config_validates_and_normalises_camera_fields(tmp_path):
    assert PipelineConfig(intrinsics="800,800,320,240").intrinsics == (800.0, 800.0, 320.0, 240.0)
    assert PipelineConfig(fov=70).fov == 70.0
    good = _write(tmp_path, "c.yaml", OPENCV_YAML)
    assert PipelineConfig(calibration=str(good)).calibration == str(good)
    for bad in ({"fov": -10.0}, {"fov": 180.0}, {"intrinsics": "800,800,320"},
                {"intrinsics": "a,b,c,d"}, {"fov": 60.0, "intrinsics": "1,1,1,1"},
                {"calibration": str(tmp_path / "missing.yaml")},
                {"calibration": str(_write(tmp_path, "b.yaml", "camera_matrix: [1, 2\n"))},
                {"person_height": 0.1}, {"person_height": "tall"}, {"root": "magic"}):
        with pytest.raises(SettingError):
            PipelineConfig(**bad)


@pytest.fixture()
def fake_stages(monkeypatch):
    from fakes import fake_pipeline

    monkeypatch.setattr(cli, "build_pipeline", fake_pipeline)


@pytest.mark.parametrize("option", [
    ["--intrinsics", "800,800"], ["--intrinsics", "x,y,z,w"], ["--fov", "-30"], ["--fov", "0"],
    ["--calibration", "MISSING"], ["--calibration", "BAD"], ["--fov", "60", "--intrinsics", "1,1,1,1"],
    ["--height", "-1.7"],
])
def test_bad_camera_options_give_one_line_and_no_traceback(tmp_path, capsys, fake_stages, option):
    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    bad = _write(tmp_path, "bad.yaml", "camera_matrix: [500, 0, 320, 0, 505, 240, 0, 0]\n")
    option = [str(bad) if o == "BAD" else str(tmp_path / "missing.yaml") if o == "MISSING" else o for o in option]
    status = cli.main([str(video), "--out", str(tmp_path / "p.jsonl"), "--device", "cpu", *option])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("streampose: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_header_records_the_camera_given_or_assumed(tmp_path, capsys, fake_stages):
    video = make_video(tmp_path / "clip.mp4", frames=4, size=(96, 64))
    out = tmp_path / "p.jsonl"
    assert cli.main([str(video), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    header = read_jsonl(out).header
    assert header["camera"]["source"] == "assumed" and header["camera"]["width"] == 96
    assert header["camera"]["fx"] == pytest.approx(96 / (2 * math.tan(math.radians(ASSUMED_FOV_DEG) / 2)), abs=1e-3)
    assert header["root"]["method"] == "geometry" and header["root"]["scale"] == "lifter"
    assert header["root"]["depth_relative_uncertainty"] > 0.2
    calibration = _write(tmp_path, "c.json", json.dumps({"K": [[90, 0, 48], [0, 90, 32], [0, 0, 1]],
                                                         "dist": [-0.05, 0, 0, 0, 0]}))
    assert cli.main([str(video), "--out", str(out), "--device", "cpu", "--quiet", "--calibration",
                     str(calibration), "--height", "1.62"]) == 0
    header = read_jsonl(out).header
    assert header["camera"]["source"] == "given" and header["camera"]["how"] == "calibration"
    assert header["camera"]["fx"] == 90 and header["camera"]["distortion"][0] == -0.05
    assert header["root"] == {"method": "geometry", "scale": "height", "person_height_m": 1.62}
    assert cli.main([str(video), "--out", str(out), "--device", "cpu", "--quiet", "--intrinsics",
                     "100,101,47.5,31.5"]) == 0
    camera = read_jsonl(out).header["camera"]
    assert (camera["fx"], camera["fy"], camera["cx"], camera["cy"], camera["how"]) == (100, 101, 47.5, 31.5, "intrinsics")


def test_calibration_dataclass_round_trips_through_options():
    calibration = Calibration(matrix=((500.0, 0.0, 320.0), (0.0, 500.0, 240.0), (0.0, 0.0, 1.0)),
                              distortion=(0.0,) * 5, size=(640, 480), source="x")
    model = CameraOptions(calibration=calibration).resolve(1280, 960)
    assert model.how == "calibration" and model.intrinsics.fx == 1000.0
