"""Batch throughput: ``streampose batch`` (local pool, Ray local runtime) vs a loop of CLI calls.

Two sets of videos:

* **generated**: ``--videos`` short clips (``--frames`` frames, 320x240) of the drawn figure of
  ``tests/figures.py`` moving about, encoded with ``tests/videogen.py`` (the real BlazePose finds it);
* **shared**: the videos in ``../shared/data/videos`` (all of them, the 4-camera clip included),
  each cut to ``--shared-max-frames`` frames.

Modes, each timed end to end as a user would run it (process start, model load, every video):

* ``cli_loop``  -- ``streampose VIDEO --out ...`` once per video, one after the other;
* ``pool``      -- ``streampose batch DIR --out-dir ...`` with the default workers;
* ``pool_alt``  -- the same with the other choice of workers (2 if the default is 1, else 1);
* ``ray``       -- ``streampose batch DIR --ray`` (local Ray runtime: its start and stop included);
* ``ray_cluster`` -- ``streampose batch DIR --ray-address ADDR`` on a Ray runtime that is already up
  (started untimed by a helper process before the run, stopped after it): how Ray is used to
  scale out, where the cluster outlives the batches.  Same workers and torch threads as ``pool``.

Modes run interleaved ``--repeats`` times (the order rotates) and the median is reported.  Outputs
are compared: pool vs Ray and pool vs the CLI must be byte for byte equal in header and frame
records, and equal in the summary apart from its timings.  The pool's manifest gives the measured
per-video cost used in docs/BATCH.md.

    python benchmarks/batch.py                          # both sets, 2 repeats
    python benchmarks/batch.py --repeats 1 --no-shared --videos 20 --frames 30
    # add a set to the existing results: 80 clips, only the pool and Ray's local runtime
    python benchmarks/batch.py --videos 80 --no-shared --modes pool,ray --set-name generated_80 --update

Writes ``benchmarks/results/batch.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
TIMING_KEYS = ("wall_time", "fps", "latency", "lookahead")


def make_generated(folder: Path, count: int, frames: int) -> list[Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from figures import scene
    from videogen import make_video

    paths = []
    for k in range(count):
        def painter(i, w, h, k=k):
            return scene(w, h, [(w / 2 + 40 * math.sin((i + 5 * k) / 7), 16 + 5 * math.sin(i / 4), h * (0.7 + 0.01 * k))])

        paths.append(make_video(folder / f"clip{k:02d}.mp4", frames=frames, size=(320, 240), draw=painter))
    return paths


def shared_set(folder: Path) -> list[Path]:
    """Links to the shared videos in ``folder`` (so the batch and the CLI see the same paths)."""
    videos = sorted(p for p in SHARED_VIDEOS.rglob("*.mp4"))
    out = []
    for video in videos:
        link = folder / video.relative_to(SHARED_VIDEOS)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(video)
        out.append(link)
    return out


def run(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def cli_loop(videos: list[Path], root: Path, out: Path, extra: list[str]) -> float:
    started = time.perf_counter()
    for video in videos:
        target = out / f"{video.relative_to(root).as_posix()}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "streampose", str(video.absolute()), "--out", str(target), "-q", *extra])
    return time.perf_counter() - started


def batch(root: Path, out: Path, extra: list[str]) -> float:
    return run([sys.executable, "-m", "streampose", "batch", str(root), "--out-dir", str(out), "-q", *extra])


def comparable(path: Path) -> tuple[bytes, dict]:
    """(header and frame lines as bytes, summary without timings)."""
    lines = path.read_bytes().split(b"\n")
    summary = json.loads(lines[-2])
    assert summary["type"] == "summary", path
    return b"\n".join(lines[:-2]), {k: v for k, v in summary.items() if not any(t in k for t in TIMING_KEYS)}


def same_outputs(a: Path, b: Path) -> dict:
    files = sorted(p.relative_to(a) for p in a.rglob("*.jsonl") if p.name != "manifest.jsonl")
    other = sorted(p.relative_to(b) for p in b.rglob("*.jsonl") if p.name != "manifest.jsonl")
    differing = [str(f) for f in files if f not in other or comparable(a / f) != comparable(b / f)]
    return {"files": len(files), "same_file_set": files == other, "differing": differing,
            "identical": files == other and not differing}


def manifest_costs(out: Path) -> dict:
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    seconds = [r["wall_time"] for r in ok]
    frames = sum(r["frames"] for r in ok)
    return {"videos_ok": len(ok), "frames": frames, "video_seconds_sum": round(sum(seconds), 2),
            "video_seconds_median": round(statistics.median(seconds), 3) if seconds else None,
            "frames_per_video_second": round(frames / sum(seconds), 2) if seconds else None}


class RayHead:
    """A Ray runtime kept up by a helper process of ours; stopped (ray.shutdown) when we close its stdin."""

    CODE = ("import logging, os, sys, ray; "
            "ctx = ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.ERROR); "
            "print(ctx.address_info['address'], flush=True); sys.stdin.read(); ray.shutdown()")

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        address = self.proc.stdout.readline().strip()
        if not address:
            raise RuntimeError("the Ray head did not start")
        time.sleep(1.0)  # let its start-up work settle before the timed run
        # "auto" finds the local head and its session's auth token (Ray >= 2.5x enables token
        # authentication; a bare address would need RAY_AUTH_TOKEN).
        return "auto" if address else address

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _pool_layout_flags() -> list[str]:
    """--workers/--threads that give a cluster run the local pool's default layout on this machine."""
    from streampose.batch.run import default_cpu_workers
    from streampose.batch.work import worker_threads

    workers = default_cpu_workers()
    threads = worker_threads(None, workers) or (1 if (os.cpu_count() or 1) <= 2 else None)
    return ["--workers", str(workers)] + (["--threads", str(threads)] if threads else [])


def model_start_seconds(device: str) -> float:
    """A fresh process: import streampose + torch and build the default pipeline."""
    code = ("import time; t = time.perf_counter(); from streampose.pipeline import Pipeline, PipelineConfig; "
            f"Pipeline(PipelineConfig(device={device!r})); print(time.perf_counter() - t)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(time.perf_counter() - started, 2), round(float(done.stdout.strip().splitlines()[-1]), 2)


def measure_set(name: str, videos: list[Path], root: Path, work: Path, args, extra: list[str]) -> dict:
    modes = ["cli_loop", "pool", "pool_alt"] + ([] if args.no_ray else ["ray", "ray_cluster"])
    if args.modes:
        modes = [m for m in modes if m in args.modes.split(",")]
    alt = "2" if _default_workers() == 1 else "1"
    walls: dict[str, list[float]] = {m: [] for m in modes}
    outs = {}
    for repeat in range(args.repeats):
        order = modes[repeat % len(modes):] + modes[: repeat % len(modes)]
        for mode in order:
            out = work / f"{name}-{mode}-{repeat}"
            if mode == "cli_loop":
                wall = cli_loop(videos, root, out, extra)
            elif mode == "ray_cluster":
                with RayHead() as address:
                    wall = batch(root, out, extra + ["--ray-address", address, *_pool_layout_flags()])
            else:
                flags = {"pool": [], "pool_alt": ["--workers", alt], "ray": ["--ray"]}[mode]
                wall = batch(root, out, extra + flags)
            walls[mode].append(round(wall, 2))
            outs.setdefault(mode, out)
            print(f"  {name} {mode} run {repeat + 1}: {wall:.1f} s", flush=True)
    frames = manifest_costs(outs["pool"])["frames"]
    result: dict = {"videos": len(videos), "frames": frames, "modes": {}}
    for mode in modes:
        median = statistics.median(walls[mode])
        result["modes"][mode] = {"wall_s_runs": walls[mode], "wall_s_median": round(median, 2),
                                 "videos_per_min": round(60 * len(videos) / median, 2),
                                 "frames_per_s": round(frames / median, 2)}
    result["pool_costs"] = manifest_costs(outs["pool"])
    if "cli_loop" not in modes:  # a partial set (--modes): pool vs Ray only
        if "ray" in modes:
            result["ray_throughput_vs_pool"] = round(result["modes"]["pool"]["wall_s_median"]
                                                     / result["modes"]["ray"]["wall_s_median"], 3)
            result["outputs_pool_vs_ray"] = same_outputs(outs["pool"], outs["ray"])
        return result
    cli = result["modes"]["cli_loop"]["wall_s_median"]
    pool = result["modes"]["pool"]["wall_s_median"]
    result["pool_speedup_vs_cli_loop"] = round(cli / pool, 2)
    result["pool_alt_workers"] = int(alt)
    result["pool_alt_speedup_vs_cli_loop"] = round(cli / result["modes"]["pool_alt"]["wall_s_median"], 2)
    result["per_run_speedups_pool_vs_cli"] = [round(c / p, 2) for c, p in zip(walls["cli_loop"], walls["pool"])]
    result["outputs_pool_vs_cli"] = same_outputs(outs["pool"], outs["cli_loop"])
    result["pool_alt_costs"] = manifest_costs(outs["pool_alt"])
    if "ray" in modes:
        ray = result["modes"]["ray"]["wall_s_median"]
        result["ray_throughput_vs_pool"] = round(pool / ray, 3)
        result["per_run_ray_vs_pool"] = [round(p / r, 3) for p, r in zip(walls["pool"], walls["ray"])]
        result["outputs_pool_vs_ray"] = same_outputs(outs["pool"], outs["ray"])
        result["ray_costs"] = manifest_costs(outs["ray"])
        cluster = result["modes"]["ray_cluster"]["wall_s_median"]
        result["ray_cluster_throughput_vs_pool"] = round(pool / cluster, 3)
        result["per_run_ray_cluster_vs_pool"] = [round(p / r, 3) for p, r in zip(walls["pool"], walls["ray_cluster"])]
        result["outputs_pool_vs_ray_cluster"] = same_outputs(outs["pool"], outs["ray_cluster"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shared-max-frames", type=int, default=60)
    parser.add_argument("--no-shared", action="store_true")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    parser.add_argument("--modes", default=None, help="comma-separated subset of the modes (pool is always needed)")
    parser.add_argument("--set-name", default="generated", help="name of the generated set in the results")
    parser.add_argument("--update", action="store_true", help="add the sets to the existing results file")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "batch.json"))
    args = parser.parse_args()
    if not args.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print('ray is not installed (pip install "streampose[ray]"): skipping the Ray mode', file=sys.stderr)
            args.no_ray = True

    work = Path(tempfile.mkdtemp(prefix="streampose-bench-batch-"))
    report: dict = {
        "benchmark": "batch", "date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "device": args.device,
        "load_average_at_start": list(os.getloadavg()), "repeats": args.repeats,
        "default_workers": _default_workers(), "sets": {},
    }
    try:
        process_s, build_s = model_start_seconds(args.device)
        report["model_start"] = {"process_s": process_s, "pipeline_build_s": build_s,
                                 "what": "fresh python: import + build the default Pipeline (process_s: whole process)"}
        generated = work / "generated"
        generated.mkdir()
        videos = make_generated(generated, args.videos, args.frames)
        name = args.set_name
        report["sets"][name] = measure_set(name, videos, generated, work, args, ["--device", args.device])
        report["sets"][name]["description"] = f"{args.videos} clips, {args.frames} frames each, 320x240, 30 fps"
        report["sets"][name]["load_average_at_start"] = report["load_average_at_start"]
        if not args.no_shared and SHARED_VIDEOS.is_dir():
            shared = work / "shared"
            shared.mkdir()
            videos = shared_set(shared)
            extra = ["--device", args.device, "--max-frames", str(args.shared_max_frames)]
            report["sets"]["shared"] = measure_set("shared", videos, shared, work, args, extra)
            report["sets"]["shared"]["description"] = (f"{len(videos)} videos of ../shared/data/videos, first "
                                                       f"{args.shared_max_frames} frames each")
    finally:
        report["load_average_at_end"] = list(os.getloadavg())
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.update and Path(args.out).exists():
        previous = json.loads(Path(args.out).read_text())
        previous["sets"].update(report["sets"])
        report = previous
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def _default_workers() -> int:
    from streampose.batch.run import default_cpu_workers

    return default_cpu_workers()


def print_table(report: dict) -> None:
    print(f"\nbatch throughput ({report['machine']}, load {report['load_average_at_start'][0]:.1f} at start; "
          f"medians of {report['repeats']} interleaved runs)")
    print(f"{'set':<13} {'mode':<11} {'wall s':>8} {'videos/min':>11} {'frames/s':>9}")
    for name, result in report["sets"].items():
        for mode, numbers in result["modes"].items():
            print(f"{name:<13} {mode:<11} {numbers['wall_s_median']:>8.1f} {numbers['videos_per_min']:>11.1f} "
                  f"{numbers['frames_per_s']:>9.1f}")
        parts = []
        if "pool_speedup_vs_cli_loop" in result:
            parts.append(f"pool vs CLI loop: {result['pool_speedup_vs_cli_loop']:.2f}x (target >= 1.7)")
        if "ray_throughput_vs_pool" in result:
            ray = f"Ray vs pool throughput: local runtime {result['ray_throughput_vs_pool']:.2f}"
            if "ray_cluster_throughput_vs_pool" in result:
                ray += f", running cluster {result['ray_cluster_throughput_vs_pool']:.2f}"
            parts.append(ray + " (target >= 0.85)")
            parts.append(f"outputs pool = Ray: {result['outputs_pool_vs_ray']['identical']}"
                         + (f" / {result['outputs_pool_vs_ray_cluster']['identical']}"
                            if "outputs_pool_vs_ray_cluster" in result else ""))
        if "outputs_pool_vs_cli" in result:
            parts.append(f"outputs pool = CLI: {result['outputs_pool_vs_cli']['identical']}")
        print("  " + "; ".join(parts))
    start = report["model_start"]
    print(f"model start in a fresh process: {start['process_s']:.1f} s (pipeline build {start['pipeline_build_s']:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
