"""Threads joined by bounded queues: the plumbing shared by the frame reader and the pipeline.

A :class:`Channel` carries items from one producer thread to one consumer, in order, through a
bounded queue:

* by default a full channel makes the producer wait (backpressure: nothing is lost);
* with ``drop_oldest=True`` a full channel discards its oldest item instead, so a live source never
  waits and the consumer always gets the freshest items; discards are counted in ``dropped``.

The producer ends the stream with :meth:`Channel.put_end` or :meth:`Channel.put_failure`.  These
markers are never dropped: they wait for room, so every item sent before a failure is still
delivered, and the consumer sees the failure right after them (:class:`StageFailed`).

Every channel of a run shares one ``stop`` event: once it is set, producers give up putting and
consumers stop receiving within :data:`POLL_S`, so no thread stays blocked on a queue whose other
end has gone.  :func:`start_stage` runs a producer in a daemon thread and turns whatever it raises
into a failure marker downstream.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")

POLL_S = 0.05  # how often a blocked producer or consumer re-checks ``stop``: bounds shutdown time


class _End:
    def __repr__(self) -> str:
        return "<end of stream>"


END = _End()
"""The marker a producer puts after its last item (also what a stopped channel reads as)."""


@dataclass(frozen=True)
class Failure:
    """The marker of a producer that failed: ``stage`` names it, ``error`` is what it raised."""

    stage: str
    error: BaseException


class StageFailed(Exception):
    """Raised to a consumer that reads a failure marker; ``failure`` says which stage and why.

    A stage that lets it propagate out of its body (see :func:`start_stage`) forwards the failure
    downstream unchanged, so the end consumer learns which stage failed first.
    """

    def __init__(self, failure: Failure):
        super().__init__(f"{failure.stage}: {failure.error!r}")
        self.failure = failure


class Channel(Generic[T]):
    """A bounded, ordered hand-off from one producer thread to one consumer thread.

    Args:
        capacity: items held at most (>= 1).
        drop_oldest: when full, discard the oldest item instead of waiting (live sources).
        stop: the run's shared stop event (a fresh one if not given).
    """

    def __init__(self, capacity: int, *, drop_oldest: bool = False, stop: threading.Event | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self.drop_oldest = drop_oldest
        self.stop = stop if stop is not None else threading.Event()
        self.dropped = 0

    # ------------------------------------------------------------------ producer side

    def put(self, item: T) -> bool:
        """Send one item; ``False`` (item discarded) once ``stop`` is set."""
        if not self.drop_oldest:
            return self._put_waiting(item)
        while not self.stop.is_set():
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                # Only items are ever dropped: a marker is the producer's last put.
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:  # the consumer took one meanwhile
                    pass
        return False

    def put_end(self) -> bool:
        """Send the end marker (waits for room even when dropping); ``False`` if stopped."""
        return self._put_waiting(END)

    def put_failure(self, stage: str, error: BaseException) -> bool:
        """Send a failure marker naming ``stage``; ``False`` if stopped (nobody is listening)."""
        return self._put_waiting(Failure(stage, error))

    def _put_waiting(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    # ------------------------------------------------------------------ consumer side

    def get(self, producer_alive: Callable[[], bool] | None = None) -> T | _End:
        """The next item, or :data:`END` at the end of the stream or once ``stop`` is set.

        ``producer_alive`` lets a consumer finish instead of waiting forever when every producer
        thread is gone without a marker (which only happens after a stop).

        Raises:
            StageFailed: the producer sent a failure marker.
        """
        while True:
            if self.stop.is_set():
                return END
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if producer_alive is None or producer_alive():
                    continue
                try:  # the producer may have put its marker just before it ended
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return END
            if isinstance(item, Failure):
                raise StageFailed(item)
            return item

    def receive(self, producer_alive: Callable[[], bool] | None = None) -> Iterator[T]:
        """Iterate the items up to the end marker (or a stop); see :meth:`get`."""
        while True:
            item = self.get(producer_alive)
            if item is END:
                return
            yield item

    def drain(self) -> None:
        """Discard everything queued (frees memory, and unblocks a producer waiting for room)."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass


def start_stage(stage: str, body: Callable[[], None], downstream: Channel, *,
                thread_name: str | None = None) -> threading.Thread:
    """Run ``body`` in a daemon thread; whatever it raises reaches ``downstream`` as a failure.

    A :class:`StageFailed` from an upstream channel is forwarded with the upstream stage's name;
    any other exception is reported as a failure of ``stage``.  ``body`` is responsible for its
    own end marker.
    """

    def guarded() -> None:
        try:
            body()
        except StageFailed as failed:
            downstream.put_failure(failed.failure.stage, failed.failure.error)
        except BaseException as error:  # noqa: BLE001 -- every failure must reach the consumer
            downstream.put_failure(stage, error)

    thread = threading.Thread(target=guarded, name=thread_name or f"streampose-{stage}", daemon=True)
    thread.start()
    return thread


def labelled(stage: str, items: Iterable[T]) -> Iterator[T]:
    """``items``, with anything iterating them raises turned into a :class:`StageFailed` of ``stage``.

    For a source iterated inside another stage's thread (a user's iterable read by the 2D thread):
    its errors are then reported as the source's, not as the stage's that happened to call it.
    """
    iterator = iter(items)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except StageFailed:
            raise
        except BaseException as error:  # noqa: BLE001 -- named and handed on
            raise StageFailed(Failure(stage, error)) from error
        yield item


def pump(items: Iterable[T], channel: Channel, stage: str) -> threading.Thread:
    """Copy ``items`` into ``channel`` from a thread of their own, then the end marker.

    Used for live sources the caller hands in as an iterable: with a dropping channel the source
    never waits for the stages behind it.
    """

    def body() -> None:
        for item in labelled(stage, items):
            if not channel.put(item):
                return
        channel.put_end()

    return start_stage(stage, body, channel, thread_name=f"streampose-{stage}")
