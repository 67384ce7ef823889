"""The poll engine: every conversation of a pass over non-blocking sockets.

Rules
-----
* ``run(conversations, timeout)`` runs each conversation (``conversation.py``)
  to its end and returns, in the same order, its Reading or a PlugError with a
  one-line reason.  It never raises for a plug's sake.
* Each conversation may last ``timeout`` seconds from its start; then
  TimeoutError is raised into it at its current ``yield`` and it is over.
* At most ``limit`` conversations run at once (each holds at most one
  socket); the rest start as others end, in order.  The default keeps well
  below the process's open-file limit.
* Every socket is closed when its conversation ends, however it ends, and
  when the pass is cancelled (a stop signal in the middle of a pass).
* The cyclic garbage collector waits while a pass runs and is put back as
  it was when the pass ends, however it ends.  A poll's objects are freed by
  reference counting as it ends; the few cycles a pass leaves (an exception
  and its traceback) are collected after it in one go, not by a collection
  every 700 allocations in the middle of the pass.

Theory of operation
-------------------
A poll is a handful of system calls: socket, connect, send, a wait, recv,
close.  Driven through asyncio's streams or futures, the Python around them
(a task, futures, handles, a timeout context per poll) costs more than the
calls.  So a pass gets one private epoll of its own, registered with the
asyncio loop as a single reader: when any of the pass's sockets is ready the
loop calls back once, and the engine drains the epoll and steps each ready
conversation's generator.  The loop stays free for signals and pushed
readings meanwhile.

Time costs one timer per pass, not one per poll: conversations start in
order, so their deadlines are in order too and a deque holds them; one loop
timer is set for the earliest.  Only ``Receive(within)`` waits (datagram
resends) go into a small heap.

An operation is tried at once and waited for only when the kernel says it
would block: a send on a fresh loopback or LAN connection usually goes
straight out, so a typical poll registers its socket once, for reading.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import gc
import heapq
import os
import resource
import select
import socket
from collections import deque
from collections.abc import Sequence
from typing import Any

from whitegoodsd.conversation import Close, Connect, Conversation, Receive, Send
from whitegoodsd.errors import PlugError, Reading, as_failure, describe

CHUNK = 4096  # bytes read at a time: a datagram or a piece of a stream
_WAIT: Any = object()  # an operation is under way; its outcome comes later
_READ = select.EPOLLIN
_WRITE = select.EPOLLOUT
# Names resolved once are kept this long (plugs are mostly addressed by number).
RESOLVED_FOR = 300.0
_resolved: dict[tuple[str, int, bool], tuple[float, socket.AddressFamily, Any]] = {}
_UNKNOWN: Any = object()
_numeric: dict[str, socket.AddressFamily | None] = {}  # host -> numeric_family(host)
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_DGRAM = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK


def max_in_flight() -> int:
    """How many polls may be open at once: well below the open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(1, min(512, (soft - 64) // 2))


def numeric_family(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 when ``host`` is an address literal, else None (a name)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


class _Poll:
    """One conversation in flight."""

    __slots__ = (
        "connecting",
        "deadline",
        "done",
        "events",
        "fd",
        "gen",
        "index",
        "out",
        "sock",
        "token",
    )

    def __init__(self, gen: Conversation[Reading], index: int, deadline: float) -> None:
        self.gen = gen
        self.index = index
        self.deadline = deadline
        self.sock: _socket.socket | None = None
        self.fd = -1  # the socket's descriptor while it is open
        self.events = 0  # what the socket is registered for in the epoll; 0: not registered
        self.connecting = False  # a TCP connect not yet seen to complete
        self.out = b""  # what is left to send
        self.token = 0  # tells a Receive(within) timer whether it is still current
        self.done = False


class _Pass:
    """The conversations of one call to run()."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        conversations: Sequence[Conversation[Reading]],
        timeout: float,
        limit: int,
    ) -> None:
        self.loop = loop
        self.timeout = timeout
        self.limit = limit
        self.results: list[Reading | PlugError | None] = [None] * len(conversations)
        self.todo = iter(enumerate(conversations))
        self.exhausted = not conversations
        self.running = 0
        self.epoll = select.epoll()
        self.by_fd: dict[int, _Poll] = {}
        self.order: deque[_Poll] = deque()  # by deadline, i.e. by start
        self.waits: list[tuple[float, int, int, _Poll]] = []  # Receive(within)
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.finished: asyncio.Future[None] = loop.create_future()
        self._count = 0

    # -- the pass --------------------------------------------------------------

    async def run(self) -> list[Reading | PlugError]:
        self.loop.add_reader(self.epoll.fileno(), self._on_ready)
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._settle()
            if not self.finished.done():
                await self.finished
        finally:
            self.loop.remove_reader(self.epoll.fileno())
            if self.timer is not None:
                self.timer.cancel()
            for poll in self.order:
                if not poll.done:
                    poll.gen.close()
                    self._close(poll)
            self.epoll.close()
            if collecting:
                gc.enable()
        return [r if r is not None else PlugError("not polled") for r in self.results]

    def _settle(self) -> None:
        """Start what may start, finish the pass if all is done, set the timer."""
        deadline = self.loop.time() + self.timeout  # for all started in this callback
        while self.running < self.limit and not self.exhausted:
            item = next(self.todo, None)
            if item is None:
                self.exhausted = True
                break
            index, gen = item
            poll = _Poll(gen, index, deadline)
            self.running += 1
            self.order.append(poll)
            self._step(poll, None)
        if self.running == 0 and self.exhausted:
            if not self.finished.done():
                self.finished.set_result(None)
            return
        self._arm()

    def _arm(self) -> None:
        order, waits = self.order, self.waits
        while order and order[0].done:
            order.popleft()
        while waits and (waits[0][3].done or waits[0][2] != waits[0][3].token):
            heapq.heappop(waits)
        when = min(
            order[0].deadline if order else float("inf"), waits[0][0] if waits else float("inf")
        )
        if when == float("inf"):
            return
        if self.timer is not None:
            if self.timer_at <= when:
                return  # it fires first; _on_timer sets the next
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._on_timer)
        self.timer_at = when

    def _on_timer(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.waits and self.waits[0][0] <= now:
            _, _, token, poll = heapq.heappop(self.waits)
            if not poll.done and token == poll.token:
                poll.token += 1
                self._step(poll, None)
        while self.order and self.order[0].deadline <= now:
            poll = self.order.popleft()
            if not poll.done:
                self._expire(poll)
        self._settle()

    def _on_ready(self) -> None:
        for fd, events in self.epoll.poll(0):
            poll = self.by_fd.get(fd)
            if poll is not None and not poll.done:
                self._ready(poll, events)
        self._settle()

    # -- one conversation ------------------------------------------------------

    def _ready(self, poll: _Poll, events: int) -> None:
        sock = poll.sock
        assert sock is not None
        if not poll.out:  # waiting to receive: the usual case
            try:
                data = sock.recv(CHUNK)
            except BlockingIOError:
                return
            except OSError as exc:
                self._step(poll, None, exc)
                return
            poll.token += 1
            poll.connecting = False
            self._step(poll, data)
            return
        try:  # waiting to send
            if poll.connecting:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
                poll.connecting = False
            sent = sock.send(poll.out)
        except BlockingIOError:
            return
        except OSError as exc:
            self._step(poll, None, exc)
            return
        poll.out = poll.out[sent:]
        if not poll.out:
            self._want(poll, _READ)
            self._step(poll, None)

    def _step(self, poll: _Poll, value: Any, exc: BaseException | None = None) -> None:
        """Drive the conversation until it waits for the kernel, or ends."""
        gen = poll.gen
        while True:
            try:
                op = gen.send(value) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                self._end(poll, stop.value)
                return
            except Exception as error:  # noqa: BLE001 - a bad reply must not stop the pass
                self._end(poll, as_failure(error, self.timeout))
                return
            exc = None
            try:
                value = self._do(poll, op)
            except OSError as error:
                exc, value = error, None
                continue
            if value is _WAIT:
                return

    def _do(self, poll: _Poll, op: Any) -> Any:
        """Carry out one operation: its outcome, or _WAIT."""
        kind = type(op)
        if kind is Receive:
            if poll.sock is None:
                raise OSError(errno.ENOTCONN, "receive before connect")
            self._want(poll, _READ)
            poll.token += 1
            if op.within is not None:
                self._count += 1
                heapq.heappush(
                    self.waits, (self.loop.time() + op.within, self._count, poll.token, poll)
                )
            return _WAIT
        if kind is Send:
            return self._send(poll, op.data)
        if kind is Connect:
            return self._connect(poll, op)
        if kind is Close:
            self._close(poll)
            return None
        raise TypeError(f"not an operation: {op!r:.60}")

    def _send(self, poll: _Poll, data: bytes) -> Any:
        sock = poll.sock
        if sock is None:
            raise OSError(errno.ENOTCONN, "send before connect")
        try:
            sent = sock.send(data)
        except BlockingIOError:  # still connecting, or the buffer is full
            sent = 0
        if sent == len(data):
            return None
        poll.out = data[sent:]
        self._want(poll, _WRITE)
        return _WAIT

    def _connect(self, poll: _Poll, op: Connect) -> Any:
        self._close(poll)
        family = _numeric.get(op.host, _UNKNOWN)
        if family is _UNKNOWN:
            family = _numeric[op.host] = numeric_family(op.host)
        address: Any = (op.host, op.port)
        if family is None:
            key = (op.host, op.port, op.datagram)
            known = _resolved.get(key)
            if known is None or known[0] < self.loop.time():
                self._resolve(poll, op)
                return _WAIT
            _, family, address = known
        kind = _DGRAM if op.datagram else _STREAM
        sock = _socket.socket(family, kind)  # the C type: no Python layer around it
        code = sock.connect_ex(address)
        if code and code != errno.EINPROGRESS:
            sock.close()
            raise OSError(code, os.strerror(code))
        poll.sock = sock
        poll.fd = fd = sock.fileno()
        poll.connecting = code != 0
        self.by_fd[fd] = poll
        return sock.getsockname() if op.local else None

    def _resolve(self, poll: _Poll, op: Connect) -> None:
        kind = socket.SOCK_DGRAM if op.datagram else socket.SOCK_STREAM
        lookup = asyncio.ensure_future(self.loop.getaddrinfo(op.host, op.port, type=kind))
        token = poll.token = poll.token + 1

        def resolved(future: asyncio.Future[Any]) -> None:
            if poll.done or token != poll.token:
                return
            try:
                infos = future.result()
                if not infos:
                    raise OSError(errno.EHOSTUNREACH, f"no address for {op.host}")
                family, _, _, _, address = infos[0]
                _resolved[(op.host, op.port, op.datagram)] = (
                    self.loop.time() + RESOLVED_FOR,
                    family,
                    address,
                )
            except (OSError, UnicodeError) as exc:
                reason = OSError(errno.EHOSTUNREACH, f"cannot resolve {op.host}: {exc}")
                self._step(poll, None, reason)
            else:
                self._retry_connect(poll, op)
            self._settle()

        lookup.add_done_callback(resolved)

    def _retry_connect(self, poll: _Poll, op: Connect) -> None:
        try:
            value = self._connect(poll, op)
        except OSError as exc:
            self._step(poll, None, exc)
            return
        if value is not _WAIT:
            self._step(poll, value)

    def _want(self, poll: _Poll, events: int) -> None:
        if poll.events == events:
            return
        if poll.events:
            self.epoll.modify(poll.fd, events)
        else:
            self.epoll.register(poll.fd, events)
        poll.events = events

    def _close(self, poll: _Poll) -> None:
        sock = poll.sock
        if sock is None:
            return
        del self.by_fd[poll.fd]
        sock.close()  # the epoll forgets a closed descriptor by itself
        poll.sock = None
        poll.fd = -1
        poll.events = 0
        poll.out = b""
        poll.connecting = False

    def _expire(self, poll: _Poll) -> None:
        timeout = TimeoutError()
        try:
            poll.gen.throw(timeout)
        except StopIteration as stop:
            self._end(poll, stop.value)
            return
        except Exception as error:  # noqa: BLE001 - as in _step
            self._end(poll, as_failure(error, self.timeout))
            return
        poll.gen.close()  # it went on after its time: it is over all the same
        self._end(poll, PlugError(describe(timeout, self.timeout)))

    def _end(self, poll: _Poll, result: object) -> None:
        if poll.done:
            return
        if not isinstance(result, (Reading, PlugError)):
            result = PlugError(f"the driver gave {type(result).__name__}, not a reading")
        poll.done = True
        self.results[poll.index] = result
        self._close(poll)
        self.running -= 1


async def run(
    conversations: Sequence[Conversation[Reading]],
    timeout: float,  # noqa: ASYNC109 - per poll, not for the whole call
    limit: int | None = None,
) -> list[Reading | PlugError]:
    """Run every conversation; each one's Reading or PlugError, in order."""
    loop = asyncio.get_running_loop()
    return await _Pass(loop, conversations, timeout, limit or max_in_flight()).run()
