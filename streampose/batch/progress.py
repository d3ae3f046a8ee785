"""What a person watching a batch sees: one overall bar, one compact line of worker status, and a
summary table at the end.  Without a terminal (logs, CI) the bars give way to one line per video."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

REFRESH_S = 0.5
_KEY_CHARS = 28


class BatchProgress:
    """Overall bar (videos done of all, frames/s, ETA) + per-worker status, or log lines."""

    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None, workers: int = 1) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.started = time.perf_counter()
        self.frames_done = 0          # frames of finished videos
        self.frames_running: dict[str, int] = {}
        self.workers: dict[str, str] = {}
        self.finished = 0
        self._last_refresh = 0.0
        tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_lines = enabled and not tty
        self.bar = self.status = None
        if tty and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="video", dynamic_ncols=True, file=self.stream, position=0,
                            desc="batch", smoothing=0.1)
            self.status = tqdm(total=0, bar_format="{desc}", dynamic_ncols=True, file=self.stream, position=1,
                               leave=False, desc=f"starting {workers} worker(s): loading models")

    def started_video(self, worker: str, key: str) -> None:
        self.workers[worker] = _short(key)
        self.frames_running[worker] = 0
        self._refresh(force=True)

    def progress(self, worker: str, frames: int) -> None:
        self.frames_running[worker] = frames
        self._refresh()

    def finished_video(self, worker: str, record: dict[str, Any]) -> None:
        self.finished += 1
        self.frames_done += record.get("frames") or 0
        self.frames_running.pop(worker, None)
        self.workers[worker] = "idle"
        if self.bar is not None:
            self.bar.update(1)
            if record["status"] == "failed":
                self.bar.write(f"streampose batch: failed {record['video']}: {record.get('error')}", file=self.stream)
        elif self.log_lines:
            self._log(record)
        self._refresh(force=True)

    def close(self) -> None:
        if self.status is not None:
            self.status.close()
        if self.bar is not None:
            self.bar.close()

    @property
    def fps(self) -> float:
        elapsed = time.perf_counter() - self.started
        frames = self.frames_done + sum(self.frames_running.values())
        return frames / elapsed if elapsed > 0 else 0.0

    def _refresh(self, force: bool = False) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if not force and now - self._last_refresh < REFRESH_S:
            return
        self._last_refresh = now
        self.bar.set_postfix_str(f"{self.fps:.1f} frames/s", refresh=False)
        self.bar.refresh()
        parts = []
        for worker in sorted(self.workers):
            what = self.workers[worker]
            frames = self.frames_running.get(worker)
            parts.append(f"{worker.split()[0]}: {what}" + (f" {frames}f" if frames else ""))
        self.status.set_description_str(" | ".join(parts), refresh=True)

    def _log(self, record: dict[str, Any]) -> None:
        status = record["status"]
        detail = (f"{record.get('frames')} frames, {record.get('people')} people, {record.get('wall_time') or 0:.1f} s"
                  if status != "failed" else str(record.get("error")))
        print(f"streampose batch: [{self.finished}/{self.total}] {status} {record['video']} ({detail})",
              file=self.stream, flush=True)


def summary_table(result) -> str:
    """The closing table: videos, frames and time per status, throughput, and the failures."""
    rows = []
    counts = result.counts
    for status, label in (("ok", "ok"), ("empty", "ok, nobody found"), ("failed", "failed"),
                          ("failed_earlier", "failed earlier (not retried)"), ("skipped", "skipped (complete)")):
        group = result.by_status.get(status, [])
        if not group and status not in ("ok", "failed"):
            continue
        frames = sum(r.get("frames") or 0 for r in group)
        seconds = sum(r.get("wall_time") or 0.0 for r in group) if status != "skipped" else 0.0
        rows.append((label, str(counts.get(status, 0)), str(frames), f"{seconds:.1f}"))
    width = max(len(r[0]) for r in rows + [("status", "", "", "")])
    lines = [f"{'status':<{width}}  {'videos':>6}  {'frames':>8}  {'video s':>8}"]
    lines += [f"{a:<{width}}  {b:>6}  {c:>8}  {d:>8}" for a, b, c, d in rows]
    done = result.frames
    rate = f"{done / result.wall_time:.1f} frames/s" if result.wall_time > 0 else "-"
    start = f" (workers ready after {result.start_seconds:.1f} s)" if result.start_seconds is not None else ""
    lines.append(f"{result.processed} processed in {result.wall_time:.1f} s with {result.workers} {result.engine} "
                 f"worker(s){start}: {rate}" + ("; INTERRUPTED (re-run to finish)" if result.interrupted else ""))
    failed = result.by_status.get("failed", [])
    for record in failed[:10]:
        lines.append(f"  failed: {record['video']}: {record.get('error')}")
    if len(failed) > 10:
        lines.append(f"  ... {len(failed) - 10} more failed; see {result.manifest}")
    lines.append(f"manifest: {result.manifest}")
    return "\n".join(lines)


def _short(key: str) -> str:
    return key if len(key) <= _KEY_CHARS else "..." + key[-(_KEY_CHARS - 3):]
