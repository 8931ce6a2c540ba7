"""A network board emulator: wire protocol v1 served on a TCP port (loopback by default).

This module owns :class:`TcpBoard`, which stands in for an ESP32-class board streaming
over Wi-Fi: it serves a :class:`~emgfb.acquisition.virtual_board.VirtualBoard` (the same
command handling, frame encoder, seeded signals and fault plan, unchanged) on a TCP socket,
so the serial driver opens it through pyserial's URL handler as ``socket://host:port``.
A bridge thread copies bytes between the board's pty and one TCP client. Imports
``virtual_board`` and ``errors`` only.

Behaviour of the emulated network board:

- one client at a time; a new connection replaces the previous one (as a small Wi-Fi
  board does when a host reconnects after a half-open link);
- bytes the board sends while no client is connected are discarded (they went nowhere);
- :meth:`TcpBoard.drop` closes the current connection at once, and ``drop_after_frames=K``
  closes it right after the K-th frame following the client's ``start`` line, so a driver
  sees exactly K frames and never a partial one;
- when the board itself disconnects (its fault plan's ``disconnect_every``), the server
  first forwards everything the board sent, then closes the connection, and serves the
  board's new pty once it is back.

Lifecycle: construct (no I/O) -> :meth:`TcpBoard.start` (starts the board if needed, binds,
listens, spawns the bridge) -> connect to :attr:`TcpBoard.url` -> :meth:`TcpBoard.stop`.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
from typing import Any

from emgfb.acquisition.virtual_board import VirtualBoard
from emgfb.errors import ConfigError, DeviceError
from emgfb.protocol import frame_length
from emgfb.worker import Worker

log = logging.getLogger(__name__)

_POLL_S = 0.05
_HIGH_WATER = 1 << 18  # bytes queued for the client before the bridge stops reading the pty
_FLUSH_TIMEOUT_S = 2.0  # longest wait to hand queued bytes to the client before closing


class TcpBoard:
    """A protocol-v1 board served on TCP (see the module docstring).

    Parameters
    ----------
    board
        The board to serve; default: a new :class:`VirtualBoard` built from
        ``board_kwargs``. A board not yet started is started (and later stopped) here.
    host
        Address to listen on; loopback by default.
    port
        TCP port; 0 picks a free ephemeral port (see :attr:`port`).
    drop_after_frames
        Close the connection right after this many frames following the client's next
        ``start`` line (once); ``None``: never.
    **board_kwargs
        Passed to :class:`VirtualBoard` when ``board`` is ``None``.
    """

    def __init__(
        self,
        board: VirtualBoard | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        drop_after_frames: int | None = None,
        **board_kwargs: Any,
    ):
        if board is not None and board_kwargs:
            raise ConfigError("TcpBoard: pass either board= or VirtualBoard options, not both")
        if not 0 <= port <= 65535:
            raise ConfigError(f"TcpBoard: port={port!r}: expected 0..65535 (0 = any free port)")
        if drop_after_frames is not None and drop_after_frames < 1:
            raise ConfigError(
                f"TcpBoard: drop_after_frames={drop_after_frames!r}: expected >= 1 or None"
            )
        self.board = board if board is not None else VirtualBoard(**board_kwargs)
        self.host = host
        self._want_port = int(port)
        self._drop_after = drop_after_frames
        self._own_board = False
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._pty = -1
        self._pty_generation = 0
        self._out = bytearray()
        self._cmd = b""
        self._budget: int | None = None  # bytes still to forward before a scheduled drop
        self._thread: Worker | None = None
        self._stop_evt = threading.Event()
        self._drop_evt = threading.Event()
        self._lock = threading.Condition()
        self._connections = 0
        self._drops = 0
        self._error: BaseException | None = None

    # -- public ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port listened on (valid after :meth:`start`)."""
        if self._listener is None:
            raise RuntimeError("TcpBoard.port is only known after start()")
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """``socket://host:port`` for :func:`~emgfb.acquisition.source.open_source`."""
        return f"socket://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """Clients accepted so far."""
        with self._lock:
            return self._connections

    @property
    def drops(self) -> int:
        """Connections the server closed (drops and board disconnects, not client closes)."""
        with self._lock:
            return self._drops

    def wait_connections(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` clients have been accepted in total."""
        with self._lock:
            return self._lock.wait_for(lambda: self._connections >= n, timeout)

    def drop(self) -> None:
        """Close the current client connection now (bytes in flight are lost)."""
        self._drop_evt.set()

    def start(self) -> None:
        """Start the board if needed, listen, and serve clients from a thread.

        Raises
        ------
        DeviceError
            The address cannot be bound (port in use, no such interface).
        """
        if self._thread is not None:
            return
        if self.board._thread is None:  # noqa: SLF001 - our own sibling module
            self.board.start()
            self._own_board = True
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self._want_port))
        except OSError as exc:
            listener.close()
            if self._own_board:
                self.board.stop()
            raise DeviceError(
                f"TcpBoard: cannot listen on {self.host}:{self._want_port}: {exc.strerror}"
            ) from None
        listener.listen(1)
        listener.setblocking(False)
        self._listener = listener
        self._open_pty()
        self._stop_evt.clear()
        self._thread = Worker("tcp-board", lambda _stop: self._run())
        self._thread.start()
        log.info("network board on %s (%s)", self.url, self.board.info.line)

    def stop(self) -> None:
        """Stop serving, close every socket, stop the board if started here.

        Re-raises a failure of the bridge thread as :class:`DeviceError`.
        """
        if self._thread is None:
            return
        self._stop_evt.set()
        self._thread.join()
        self._thread = None
        self._close_client(flush=False)
        self._close_pty()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._own_board:
            self.board.stop()
            self._own_board = False
        if self._error is not None:
            error, self._error = self._error, None
            raise DeviceError(f"TcpBoard bridge failed: {error}") from error

    def __enter__(self) -> TcpBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- bridge ------------------------------------------------------------------------

    def _open_pty(self) -> None:
        self._pty = os.open(self.board.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._pty_generation = self.board.connections

    def _close_pty(self) -> None:
        if self._pty >= 0:
            os.close(self._pty)
            self._pty = -1

    def _close_client(self, flush: bool) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if flush and self._out:
            try:
                client.setblocking(True)
                client.settimeout(_FLUSH_TIMEOUT_S)
                client.sendall(bytes(self._out))
            except OSError as exc:
                log.info("TcpBoard: could not flush %d bytes: %s", len(self._out), exc)
        self._out.clear()
        self._cmd = b""
        self._budget = None
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.close()

    def _server_drop(self, flush: bool, why: str) -> None:
        if self._client is None:
            return
        log.info("TcpBoard: dropping the connection (%s)", why)
        self._close_client(flush)
        with self._lock:
            self._drops += 1

    def _run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                self._step()
        except BaseException as exc:  # surfaced by stop(); clients just see a closed link
            log.exception("TcpBoard bridge failed")
            self._error = exc

    def _step(self) -> None:
        if self._drop_evt.is_set():
            self._drop_evt.clear()
            self._server_drop(flush=False, why="drop()")
        if self._pty < 0:
            self._reopen_pty()
            return
        assert self._listener is not None
        rlist: list[Any] = [self._listener]
        if len(self._out) < _HIGH_WATER:
            rlist.append(self._pty)
        if self._client is not None:
            rlist.append(self._client)
        wlist = [self._client] if self._client is not None and self._out else []
        readable, writable, _ = select.select(rlist, wlist, [], _POLL_S)
        if self._listener in readable:
            self._accept()
        if self._client is not None and self._client in readable:
            self._from_client()
        if self._pty in readable:
            self._from_board()
        if self._client is not None and self._client in writable and self._out:
            self._to_client()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, addr = self._listener.accept()
        except BlockingIOError:
            return
        if self._client is not None:
            log.info("TcpBoard: new client %s replaces the previous one", addr)
            self._close_client(flush=False)
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        self._out.clear()
        with self._lock:
            self._connections += 1
            self._lock.notify_all()
        log.info("TcpBoard: client %s connected", addr)

    def _from_client(self) -> None:
        assert self._client is not None
        try:
            data = self._client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.info("TcpBoard: client read failed: %s", exc)
            data = b""
        if not data:
            log.info("TcpBoard: client closed the connection")
            self._close_client(flush=False)
            return
        self._watch_commands(data)
        try:
            os.write(self._pty, data)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            # the board is gone (disconnect fault): the next read on the pty handles it

    def _watch_commands(self, data: bytes) -> None:
        """Arm a scheduled drop when the client sends ``start``."""
        if self._drop_after is None:
            return
        self._cmd += data
        while b"\n" in self._cmd:
            line, self._cmd = self._cmd.split(b"\n", 1)
            if line.strip() == b"start" and self._drop_after is not None:
                self._budget = self._drop_after * frame_length(self.board.info.n_channels)
                self._drop_after = None  # once
        self._cmd = self._cmd[-64:]

    def _from_board(self) -> None:
        try:
            data = os.read(self._pty, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:  # the board closed its pty (simulated disconnect): hand over, drop
            self._to_client_all()
            self._server_drop(flush=True, why="board disconnected")
            self._close_pty()
            return
        if self._client is None:
            return  # nobody listening: the bytes went nowhere
        if self._budget is not None:
            keep = data[: self._budget]
            self._budget -= len(keep)
            self._out += keep
            if self._budget == 0:
                self._server_drop(flush=True, why="drop_after_frames")
            return
        self._out += data

    def _to_client(self) -> None:
        assert self._client is not None
        try:
            n = self._client.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.info("TcpBoard: client write failed: %s", exc)
            self._close_client(flush=False)
            return
        del self._out[:n]

    def _to_client_all(self) -> None:
        """Read what is left on the pty into the client queue (before a drop)."""
        while True:
            try:
                data = os.read(self._pty, 65536)
            except OSError:
                return
            if not data:
                return
            if self._client is not None:
                self._out += data

    def _reopen_pty(self) -> None:
        """After a board disconnect: wait for its next pty, then serve that."""
        if self.board.wait_connections(self._pty_generation + 1, _POLL_S):
            try:
                self._open_pty()
            except FileNotFoundError:
                return  # the link is being re-pointed; try again
            log.info("TcpBoard: board is back on %s", self.board.port)
        elif self._listener is not None:
            # keep accepting (and answering nothing) while the board is away
            readable, _, _ = select.select([self._listener], [], [], 0)
            if readable:
                self._accept()
