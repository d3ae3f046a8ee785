"""Installation: a wheel built from this checkout carries the weights and lifts; the registry guards them;
the runtime never imports the training package."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from figures import scene
from streampose import registry
from streampose.errors import ModelError
from videogen import make_video

REPO = Path(__file__).resolve().parents[1]


def test_every_registry_entry_matches_its_file_and_has_a_card():
    for model in registry.REGISTRY.values():
        path = registry.weights_path(model)          # raises if missing or the digest differs
        assert path.parent == registry.MODELS_DIR
        assert model.card.is_file(), f"{model.file} has no model card"
        assert model.metrics, f"{model.file}: no held-out metrics in the registry"


def test_registry_rejects_a_damaged_file(tmp_path, monkeypatch):
    model = registry.entry("lifter", "cmu")
    damaged = tmp_path / model.file
    damaged.write_bytes(registry.weights_path(model).read_bytes()[:-10] + b"0123456789")
    monkeypatch.setattr(registry, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelError, match="damaged"):
        registry.weights_path(model)
    damaged.unlink()
    with pytest.raises(ModelError, match="missing from this installation"):
        registry.weights_path(model)


def test_default_names_resolve_through_the_registry():
    assert registry.entry("lifter", "default", causal=False).name == "cmu"
    assert registry.entry("lifter", "default", causal=True).causal
    assert registry.entry("refiner", "default").kind == "refiner"
    assert registry.entry("lifter", "no_such_model") is None


def test_runtime_never_imports_the_training_package():
    code = textwrap.dedent("""
        import sys
        import streampose.pipeline, streampose.cli, streampose.lifter, streampose.refine, streampose.pose2d
        import streampose.smoothing, streampose.output, streampose.viz
        leaked = sorted(m for m in sys.modules if m.split(".")[0] == "streampose_train")
        print(",".join(leaked))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"runtime imported training modules: {result.stdout}"


@pytest.mark.slow
def test_wheel_install_runs_the_cli(tmp_path, blazepose):
    """A non-editable install (a wheel in a fresh venv) holds the weights and runs the whole pipeline."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("streampose-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The fresh venv borrows torch & co. from this environment's site-packages (a plain path, so the
    # editable install's finder in there is not activated) and gets streampose only from the wheel.
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)

    video = make_video(tmp_path / "walk.mp4", frames=20, size=(320, 240), fps=30.0,
                       draw=lambda i, w, h: scene(w, h, [(120 + 2 * i, 25, 190)]))
    out = tmp_path / "poses.jsonl"
    run = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import streampose, sys; print(streampose.__file__); "
                          "from streampose.cli import main; sys.exit(main(sys.argv[1:]))",
                          str(video), "--out", str(out), "--quiet"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr
    installed_from = Path(run.stdout.splitlines()[0])
    assert str(installed_from).startswith(str(site)), f"streampose imported from {installed_from}, not the wheel"
    trainer = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import streampose_train.lifter, streampose_train.refiner.train, streampose_train.eval.lifter"],
                             capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert trainer.returncode == 0, f"the wheel lacks the training package: {trainer.stderr[-500:]}"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    frames = [r for r in records if r["type"] == "frame"]
    lifted = [p for f in frames for p in f["people"] if p["keypoints3d"]]
    assert len(frames) == 20 and lifted, "the wheel install produced no 3D poses"
