"""The one worker lifecycle every emgfb thread follows."""

from __future__ import annotations

import queue
import threading

import pytest

from emgfb.worker import Worker, WorkerState


def test_stop_event_ends_loop_and_state_is_stopped():
    ticks = []

    def loop(stop: threading.Event) -> None:
        while not stop.wait(0.001):
            ticks.append(1)

    w = Worker("t-loop", loop)
    assert w.state is WorkerState.IDLE
    w.start()
    assert w.state is WorkerState.RUNNING and w.alive
    assert w.stop(timeout=5.0)
    assert w.state is WorkerState.STOPPED and not w.alive and w.error is None
    assert w.stop(timeout=5.0)  # idempotent


def test_target_that_returns_is_finished():
    done = threading.Event()
    w = Worker("t-done", lambda stop: None, on_exit=lambda _w: done.set()).start()
    assert done.wait(5.0) and w.join(5.0)
    assert w.state is WorkerState.FINISHED


def test_exception_is_kept_logged_and_reraised(caplog):
    def boom(stop: threading.Event) -> None:
        raise OSError("port gone")

    w = Worker("t-boom", boom).start()
    assert w.join(5.0)
    assert w.state is WorkerState.FAILED and w.state.ended
    assert isinstance(w.error, OSError)
    assert "t-boom failed: OSError: port gone" in caplog.text
    with pytest.raises(OSError, match="port gone"):
        w.raise_if_failed()


def test_wake_unblocks_a_target_waiting_on_a_queue():
    q: queue.Queue = queue.Queue()
    got = []

    def consume(stop: threading.Event) -> None:
        while not stop.is_set():
            item = q.get()
            if item is None:
                return
            got.append(item)

    w = Worker("t-queue", consume, wake=lambda: q.put(None)).start()
    q.put(1)
    assert w.stop(timeout=5.0)
    assert got == [1] and w.state is WorkerState.STOPPED


def test_stop_reports_a_thread_that_does_not_end(caplog):
    release = threading.Event()
    w = Worker("t-stuck", lambda stop: release.wait(10)).start()
    assert not w.stop(timeout=0.05)
    assert w.state is WorkerState.STOPPING
    assert "t-stuck did not stop" in caplog.text
    release.set()
    assert w.join(5.0) and w.state is WorkerState.STOPPED


def test_started_twice_is_refused():
    w = Worker("t-twice", lambda stop: None).start()
    with pytest.raises(RuntimeError, match="started twice"):
        w.start()
    w.stop()
