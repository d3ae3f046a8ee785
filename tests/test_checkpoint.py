"""Loading VideoPose3D reference checkpoints and our own self-describing weight files."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from streampose.errors import ModelError
from streampose.lifter.checkpoint import (infer_architecture, load_lifter_weights, save_lifter_weights)
from streampose.lifter.model import temporal_model, trajectory_model


def _reference_state_dict(widths, channels, joints_in, joints_out, gen):
    """A state dict with the reference implementation's parameter names and shapes, random values."""
    sd = {"expand_conv.weight": 0.2 * torch.randn(channels, joints_in * 2, widths[0], generator=gen)}

    def bn(prefix):
        sd[f"{prefix}.weight"] = 0.5 + torch.rand(channels, generator=gen)
        sd[f"{prefix}.bias"] = 0.1 * torch.randn(channels, generator=gen)
        sd[f"{prefix}.running_mean"] = 0.1 * torch.randn(channels, generator=gen)
        sd[f"{prefix}.running_var"] = 0.5 + torch.rand(channels, generator=gen)
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(1000)

    bn("expand_bn")
    for b, w in enumerate(widths[1:]):
        sd[f"layers_conv.{2 * b}.weight"] = 0.1 * torch.randn(channels, channels, w, generator=gen)
        sd[f"layers_conv.{2 * b + 1}.weight"] = 0.1 * torch.randn(channels, channels, 1, generator=gen)
        bn(f"layers_bn.{2 * b}")
        bn(f"layers_bn.{2 * b + 1}")
    sd["shrink.weight"] = 0.1 * torch.randn(joints_out * 3, channels, 1, generator=gen)
    sd["shrink.bias"] = 0.1 * torch.randn(joints_out * 3, generator=gen)
    return sd


def _plain_forward(sd, widths, x):
    """Literal eval-mode forward of the reference symmetric model on a (T, J, 2) window set."""
    def bn_relu(h, prefix):
        h = (h - sd[f"{prefix}.running_mean"][:, None]) / torch.sqrt(sd[f"{prefix}.running_var"][:, None] + 1e-5)
        return torch.relu(h * sd[f"{prefix}.weight"][:, None] + sd[f"{prefix}.bias"][:, None])

    h = x.reshape(1, x.shape[0], -1).transpose(1, 2)
    h = bn_relu(F.conv1d(h, sd["expand_conv.weight"])[0], "expand_bn")[None]
    dilation = widths[0]
    for b, w in enumerate(widths[1:]):
        pad = (w - 1) * dilation // 2
        res = h[:, :, pad: h.shape[2] - pad]
        h = bn_relu(F.conv1d(h, sd[f"layers_conv.{2 * b}.weight"], dilation=dilation)[0], f"layers_bn.{2 * b}")[None]
        h = res + bn_relu(F.conv1d(h, sd[f"layers_conv.{2 * b + 1}.weight"])[0], f"layers_bn.{2 * b + 1}")[None]
        dilation *= w
    y = F.conv1d(h, sd["shrink.weight"], sd["shrink.bias"])
    return y[0].T.reshape(y.shape[2], -1, 3)


def _write_reference_checkpoint(path, with_traj=True, widths=(3, 3, 3), channels=24):
    gen = torch.Generator().manual_seed(0)
    pos = _reference_state_dict(widths, channels, 17, 17, gen)
    traj = _reference_state_dict(widths, channels, 17, 1, gen) if with_traj else None
    # The reference training script also stores optimizer state and a numpy RandomState.
    dummy = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(dummy.parameters(), amsgrad=True)
    torch.save({"epoch": 80, "lr": 1e-5, "random_state": np.random.RandomState(1234),
                "optimizer": optimizer.state_dict(), "model_pos": pos, "model_traj": traj}, path)
    return pos, traj


def test_infer_architecture_from_shapes():
    sd = _reference_state_dict((3, 3, 3, 3), 16, 17, 17, torch.Generator().manual_seed(0))
    assert infer_architecture(sd) == {"filter_widths": [3, 3, 3, 3], "channels": 16,
                                      "num_joints_in": 17, "num_joints_out": 17}


def test_reference_checkpoint_loads_and_matches_plain_forward(tmp_path):
    path = tmp_path / "pretrained_h36m_detectron_coco.bin"
    pos, traj = _write_reference_checkpoint(path)
    weights = load_lifter_weights(path)
    assert weights.input_layout == "coco17"  # from the file name
    assert weights.pose.receptive_field == 27 and weights.pose.channels == 24
    assert weights.trajectory is not None and weights.trajectory.num_joints_out == 1
    x = torch.randn(40, 17, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = weights.pose(x[None])[0]
        ours_traj = weights.trajectory(x[None])[0]
    torch.testing.assert_close(ours, _plain_forward(pos, (3, 3, 3), x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_traj, _plain_forward(traj, (3, 3, 3), x), rtol=1e-4, atol=1e-5)


def test_reference_checkpoint_options(tmp_path):
    path = tmp_path / "pretrained_h36m_cpn.bin"
    _write_reference_checkpoint(path, with_traj=False, widths=(3, 3, 3, 3, 3), channels=8)
    weights = load_lifter_weights(path, causal=True)
    assert weights.input_layout == "h36m17"
    assert weights.trajectory is None
    assert weights.pose.causal and weights.pose.receptive_field == 243
    assert load_lifter_weights(path, input_layout="coco17").input_layout == "coco17"


def test_streampose_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    pose, traj = temporal_model(27, causal=True, channels=16).eval(), trajectory_model(27, True, 16).eval()
    path = tmp_path / "lifter_test.pt"
    save_lifter_weights(path, pose, traj, {"input_layout": "h36m17", "fps": 30, "license": "test"})
    weights = load_lifter_weights(path)
    assert weights.metadata["fps"] == 30 and weights.pose.causal
    x = torch.randn(1, 30, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(weights.pose(x), pose(x))
        torch.testing.assert_close(weights.trajectory(x), traj(x))


def test_symmetric_file_refuses_causal(tmp_path):
    path = tmp_path / "lifter_sym.pt"
    save_lifter_weights(path, temporal_model(27, channels=8), None, {"input_layout": "h36m17"})
    with pytest.raises(ModelError, match="symmetric"):
        load_lifter_weights(path, causal=True)


def test_missing_and_corrupt_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_lifter_weights(tmp_path / "nope.pt")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        load_lifter_weights(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ModelError, match="neither"):
        load_lifter_weights(other)
    wrong = tmp_path / "wrong.bin"
    sd = _reference_state_dict((3, 3, 3), 8, 17, 17, torch.Generator().manual_seed(0))
    del sd["layers_bn.0.running_var"]
    torch.save({"model_pos": sd}, wrong)
    with pytest.raises(ModelError, match="do not fit"):
        load_lifter_weights(wrong)


def test_checkpoint_objects_are_not_executed(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    path = tmp_path / "evil.bin"
    sd = _reference_state_dict((3, 3, 3), 8, 17, 17, torch.Generator().manual_seed(0))
    torch.save({"model_pos": sd, "random_state": Boom()}, path)
    weights = load_lifter_weights(path)  # must neither exit nor raise
    assert weights.pose.receptive_field == 27


def _malformed_payloads():
    """Files that unpickle fine but are not usable lifters; each must give one clear ModelError line."""
    sd = _reference_state_dict((3, 3, 3), 8, 17, 17, torch.Generator().manual_seed(0))
    wrong_rank = dict(sd, **{"expand_conv.weight": torch.zeros(8, 34)})
    sixteen = _reference_state_dict((3, 3, 3), 8, 16, 16, torch.Generator().manual_seed(0))
    good_config = temporal_model(27, channels=8).config()
    return {
        "model_pos is a list": {"model_pos": [1, 2, 3]},
        "model_pos is a string": {"model_pos": "weights"},
        "model_pos is a tensor": {"model_pos": torch.zeros(3)},
        "model_pos is empty": {"model_pos": {}},
        "model_pos holds numbers": {"model_pos": {"expand_conv.weight": 1.0, "shrink.weight": 2.0}},
        "model_pos has wrong ranks": {"model_pos": wrong_rank},
        "model_traj is a list": {"model_pos": sd, "model_traj": [0]},
        "16-joint model": {"model_pos": sixteen},
        "streampose pose is a list": {"format": "streampose.lifter", "format_version": 1, "pose": [1]},
        "streampose config is a string": {"format": "streampose.lifter", "format_version": 1,
                                          "pose": {"config": "big", "state_dict": {}}},
        "streampose config has an unknown field": {"format": "streampose.lifter", "format_version": 1,
                                                   "pose": {"config": {"colour": 1}, "state_dict": {}}},
        "streampose even filter width": {"format": "streampose.lifter", "format_version": 1,
                                         "pose": {"config": {"filter_widths": [2, 2]}, "state_dict": {"a": torch.zeros(1)}}},
        "streampose state_dict is None": {"format": "streampose.lifter", "format_version": 1,
                                          "pose": {"config": good_config, "state_dict": None}},
        "streampose format_version is text": {"format": "streampose.lifter", "format_version": "2", "pose": {}},
        "streampose metadata is a list": {"format": "streampose.lifter", "format_version": 1,
                                          "pose": {"config": good_config, "state_dict": {}}, "metadata": [1]},
        "streampose unknown input_layout": {
            "format": "streampose.lifter", "format_version": 1, "metadata": {"input_layout": "mpii16"},
            "pose": {"config": good_config,
                     "state_dict": temporal_model(27, channels=8).state_dict()}},
        "top level is a list": [1, 2],
        "top level is a tensor": torch.zeros(2),
    }


@pytest.mark.parametrize("case", sorted(_malformed_payloads()))
def test_a_malformed_model_file_is_one_clear_model_error(tmp_path, case):
    path = tmp_path / "pretrained_h36m_malformed.bin"
    torch.save(_malformed_payloads()[case], path)
    with pytest.raises(ModelError) as caught:
        load_lifter_weights(path)
    message = str(caught.value)
    assert "\n" not in message and path.name in message, message
    # Never a bare Python error text without saying what was wrong with the file.
    assert not message.startswith(("AttributeError", "TypeError", "KeyError"))


def test_a_malformed_checkpoint_on_the_command_line_is_one_line(tmp_path, capsys, monkeypatch):
    from fakes import FakePose2D
    from streampose import cli
    from streampose.pipeline import Pipeline
    from videogen import make_video

    # The real lifter loader with a stand-in 2D stage (BlazePose's weights need not be cached here).
    monkeypatch.setattr(cli, "build_pipeline", lambda args, live: Pipeline(
        cli.pipeline_config(args, live), pose2d=FakePose2D()))

    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    bad = tmp_path / "pretrained_h36m_cpn.bin"
    torch.save({"model_pos": [0.5]}, bad)
    status = cli.main([str(video), "--out", str(tmp_path / "p.jsonl"), "--device", "cpu", "--lifter", str(bad)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streampose: error: ") and "model_pos" in lines[0]


def test_model_files_that_are_not_torch_files(tmp_path):
    cases = {"empty.pt": b"", "text.pt": b"hello\n" * 100, "truncated.pt": None}
    good = tmp_path / "good.pt"
    save_lifter_weights(good, temporal_model(27, channels=8), None, {"input_layout": "h36m17"})
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2] if data is None else data)
        with pytest.raises(ModelError, match="cannot read lifter weights") as caught:
            load_lifter_weights(path)
        assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="not found"):
        load_lifter_weights(tmp_path)  # a directory


# -- the weights shipped in models/ ------------------------------------------------------------------
_MODELS = __import__("pathlib").Path(__file__).resolve().parents[1] / "streampose" / "models"

# A standing H36M-17 skeleton (metres, camera axes: y down, z forward), 3 m in front of a camera.
_STANDING = np.array([
    [0, 0, 0], [-.12, 0, 0], [-.12, .45, 0], [-.12, .87, 0], [.12, 0, 0], [.12, .45, 0], [.12, .87, 0],
    [0, -.25, 0], [0, -.5, 0], [0, -.6, -.08], [0, -.75, 0], [.18, -.5, 0], [.2, -.23, 0], [.22, .03, 0],
    [-.18, -.5, 0], [-.2, -.23, 0], [-.22, .03, 0]])


@pytest.mark.parametrize("causal", [False, True])
def test_shipped_default_weights(causal):
    from streampose.lifter import load_lifter
    from streampose.metrics import p_mpjpe

    name = "cmu_causal" if causal else "cmu"
    path = _MODELS / f"lifter_{name}.pt"
    assert path.is_file(), f"shipped weights {path} missing"
    assert path.stat().st_size < 20e6
    assert (_MODELS / f"lifter_{name}.md").is_file(), "every shipped model needs a model card"
    lifter = load_lifter("default", causal=causal)
    assert lifter.causal == causal and lifter.input_layout == "h36m17" and lifter.has_trajectory
    meta = lifter.metadata
    assert meta["training_data"] == "cmu" and "commercial" in meta["license"]
    assert len(meta["held_out_clips"]) > 0
    # A still, frontal standing person must lift to roughly that pose (the lifter learned something).
    points = _STANDING + [0.0, 0.0, 3.0]
    focal, size = 800.0, (640, 480)
    pixels = points[:, :2] / points[:, 2:] * focal + [320.0, 240.0]
    kp3d, root = lifter.lift_sequence(np.repeat(pixels[None], 30, axis=0), size)
    assert p_mpjpe(kp3d, np.repeat(_STANDING[None], 30, axis=0)) < 0.08
    assert np.all(root[:, 2] > 1.0) and np.all(root[:, 2] < 10.0)
