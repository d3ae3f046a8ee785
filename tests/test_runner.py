"""The shared queue plumbing (streampose.runner): order, backpressure, drop-oldest, end and failure
markers, stop, and failures forwarded through a chain of stages.

Every wait here is a hang guard (``join(timeout=...)``), never a measurement.
"""
import threading

import pytest

from streampose.runner import END, Channel, StageFailed, labelled, pump, start_stage

GUARD_S = 10.0  # generous: only a hang would hit it


def _join(thread):
    thread.join(timeout=GUARD_S)
    assert not thread.is_alive(), "thread hung"


def test_items_arrive_in_order_then_the_end_marker():
    channel = Channel(3)
    producer = threading.Thread(target=lambda: ([channel.put(i) for i in range(20)], channel.put_end()))
    producer.start()
    assert list(channel.receive()) == list(range(20))
    _join(producer)
    assert channel.dropped == 0


def test_a_full_channel_makes_the_producer_wait():
    channel = Channel(2)
    assert channel.put(0) and channel.put(1)
    done = threading.Event()
    producer = threading.Thread(target=lambda: (channel.put(2), done.set()))
    producer.start()
    assert not done.wait(0.2)  # nobody has read: the third put cannot have returned
    assert channel.get() == 0
    _join(producer)
    assert [channel.get(), channel.get()] == [1, 2] and channel.dropped == 0


def test_drop_oldest_keeps_the_newest_items_and_never_drops_the_end_marker():
    channel = Channel(3, drop_oldest=True)
    for i in range(10):
        assert channel.put(i)  # never waits
    assert channel.dropped == 7
    ender = threading.Thread(target=channel.put_end)  # the channel is full: the marker waits for room
    ender.start()
    assert list(channel.receive()) == [7, 8, 9]
    _join(ender)


def test_a_failure_arrives_after_every_item_sent_before_it():
    channel = Channel(2)
    error = OSError("camera unplugged")

    def producer():
        for i in range(5):
            channel.put(i)
        channel.put_failure("reader", error)

    thread = threading.Thread(target=producer)
    thread.start()
    received = []
    with pytest.raises(StageFailed) as failed:
        for item in channel.receive():
            received.append(item)
    _join(thread)
    assert received == [0, 1, 2, 3, 4]
    assert failed.value.failure.stage == "reader" and failed.value.failure.error is error


def test_stop_releases_a_blocked_producer_and_a_waiting_consumer():
    stop = threading.Event()
    full, empty = Channel(1, stop=stop), Channel(1, stop=stop)
    full.put("x")
    results = {}
    producer = threading.Thread(target=lambda: results.update(put=full.put("y")))
    consumer = threading.Thread(target=lambda: results.update(got=empty.get()))
    producer.start()
    consumer.start()
    stop.set()
    _join(producer)
    _join(consumer)
    assert results == {"put": False, "got": END}
    assert full.put_end() is False  # a stopped channel takes nothing more


def test_a_consumer_finishes_when_its_producer_died_without_a_marker():
    channel = Channel(2)
    channel.put(1)
    assert list(channel.receive(producer_alive=lambda: False)) == [1]


def test_start_stage_turns_an_exception_into_a_failure_and_forwards_upstream_failures():
    first, second = Channel(2), Channel(2)

    def failing_source():
        first.put(1)
        raise ValueError("boom in the source")

    def relay():  # reads the first channel; its StageFailed is forwarded with the source's name
        for item in first.receive():
            second.put(item * 10)
        second.put_end()

    threads = [start_stage("source", failing_source, first), start_stage("relay", relay, second)]
    assert threads[0].name == "streampose-source"
    received = []
    with pytest.raises(StageFailed) as failed:
        for item in second.receive():
            received.append(item)
    assert received == [10] and failed.value.failure.stage == "source"
    assert isinstance(failed.value.failure.error, ValueError)
    for thread in threads:
        _join(thread)

    own = Channel(1)
    start_stage("relay", lambda: 1 / 0, own)
    with pytest.raises(StageFailed) as failed:
        own.get()
    assert failed.value.failure.stage == "relay" and isinstance(failed.value.failure.error, ZeroDivisionError)


def test_labelled_names_the_source_of_an_error():
    def broken():
        yield 1
        raise OSError("unplugged")

    items = labelled("reader", broken())
    assert next(items) == 1
    with pytest.raises(StageFailed) as failed:
        next(items)
    assert failed.value.failure.stage == "reader" and isinstance(failed.value.failure.error, OSError)


def test_pump_copies_an_iterable_from_its_own_thread_dropping_when_behind():
    channel = Channel(2, drop_oldest=True)
    produced = threading.Event()

    def source():
        yield from range(50)
        produced.set()

    thread = pump(source(), channel, "camera")
    assert produced.wait(GUARD_S)  # the source never waited for the consumer
    received = list(channel.receive())
    _join(thread)
    assert received == [48, 49] and channel.dropped == 48
