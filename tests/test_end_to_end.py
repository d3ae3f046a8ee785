"""The whole pipeline with the real models on a generated video: CLI, both lifters, push == run.

Needs the BlazePose weights (fetched once from PyPI into the cache); skipped cleanly without them.
The lifter weights ship in models/.
"""
from __future__ import annotations

import numpy as np
import pytest

from figures import scene
from streampose import cli
from streampose.output import read_jsonl
from streampose.skeleton import H36M17
from videogen import make_video

FRAMES, BLANK = 36, range(14, 20)  # the figure leaves for 6 frames, then comes back
W, H = 320, 240


@pytest.fixture(scope="module")
def video(tmp_path_factory, blazepose):
    def painter(i, width, height):
        if i in BLANK:
            return scene(width, height, [])
        return scene(width, height, [(110 + 3 * i, 25, 190)])  # walks slowly to the right

    return make_video(tmp_path_factory.mktemp("e2e") / "walk.mp4", frames=FRAMES, size=(W, H), fps=30.0,
                      draw=painter)


def bone_lengths(kp3d: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(kp3d[c] - kp3d[p]) for c, p in H36M17.bones])


@pytest.mark.parametrize("extra", [[], ["--causal"]])
def test_cli_writes_real_2d_and_3d(video, tmp_path, capsys, extra):
    out = tmp_path / "poses.jsonl"
    status = cli.main([str(video), "--out", str(out), "--device", "cpu", "--quiet", *extra])
    assert status == 0, capsys.readouterr().err
    contents = read_jsonl(out)
    assert contents.header["models"]["lifter_causal"] is bool(extra)
    frames = contents.frames
    assert [f["index"] for f in frames] == list(range(FRAMES))
    for f in frames:
        if f["index"] in BLANK:
            assert f["people"] == []
    found = [f for f in frames if f["people"]]
    assert len(found) >= FRAMES - len(BLANK) - 4  # the tracker recovers after the blank segment
    for f in found:
        person = f["people"][0]
        kp2d = np.array(person["keypoints2d"])
        kp3d = np.array(person["keypoints3d"])
        assert kp2d.shape == (17, 3) and kp3d.shape == (17, 3)
        # 2D on the figure: hips near its drawn hip line (top 25 + 4.2/8 of 190 px = 125 px).
        assert abs(kp2d[H36M17.index("Hip"), 1] - 125) < 25
        # 3D is metric and root-relative, head above feet (y down), human bone lengths.
        assert np.allclose(kp3d[0], 0, atol=1e-3)
        assert kp3d[H36M17.index("Head"), 1] < kp3d[H36M17.index("RFoot"), 1] - 0.8
        assert np.all((bone_lengths(kp3d) > 0.03) & (bone_lengths(kp3d) < 0.8))
        assert person["root"][2] > 0.5  # in front of the camera


def test_push_equals_run_with_real_models(video):
    import av

    from streampose.pipeline import Pipeline, PipelineConfig

    with av.open(str(video)) as container:
        images = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:20]
    data = [(img, i / 30.0) for i, img in enumerate(images)]
    with Pipeline(PipelineConfig(device="cpu")) as pipe:
        iterated = [f.to_dict() for f in pipe.run(iter(data))]
    with Pipeline(PipelineConfig(device="cpu")) as pipe:
        pushed = [f.to_dict() for rgb, t in data for f in pipe.push(rgb, t)] + [f.to_dict() for f in pipe.flush()]
    assert len(iterated) == 20 and pushed == iterated
    assert sum(bool(f["people"]) for f in iterated) >= 12
