"""One poll of one plug as a conversation: a generator that yields what to do.

Rules
-----
* A driver's ``poll()`` returns a generator.  It yields *operations* (the
  classes below) and gets back their outcome; its return value is the
  Reading.  It never touches a socket or a clock for I/O: the engine
  (``engine.py``) does every system call, for every poll of a pass at once.
* ``Connect(host, port, datagram)`` opens a fresh socket to the plug (TCP, or
  a connected UDP socket) and closes any socket this conversation had open.
  The outcome is None, or with ``local`` set the local address (as
  ``getsockname()`` gives it).  A TCP
  connect completes in the background: a refused connection surfaces at the
  next Send or Receive.  ``host`` may be a name; the engine resolves it.
* ``Send(data)`` sends all of ``data``; the outcome is None.
* ``Receive(within)`` waits for data: the outcome is the bytes read (one
  datagram on UDP), ``b""`` at end of stream, or None when ``within`` seconds
  passed with nothing (only when ``within`` is set: for resending a lost
  datagram).  Without ``within`` it waits as long as the poll may last.
* ``Close()`` closes the socket now (the engine also closes it when the
  conversation ends).
* Failures come back into the generator as exceptions raised at the
  ``yield``: OSError (refused, reset, unreachable) and, when the poll's time
  is up, TimeoutError.  A conversation may catch them to keep its session
  state right (or to try another way, e.g. another protocol), and otherwise
  lets them propagate; it raises PlugError (errors.py) for a reply it cannot
  use.  After a TimeoutError it gets no further operations.

Theory of operation
-------------------
A generator is the cheapest state machine Python has: a poll costs no task,
future or callback of its own, and the same conversation runs unchanged in
the daemon's pass (many at once over one epoll) and in a test that feeds it
bytes by hand.  Codecs stay sans-I/O; the conversation is the few lines that
say in which order their bytes go out and come in.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Connect:
    host: str
    port: int
    datagram: bool = False
    local: bool = False  # the outcome is the local address, else None


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Receive:
    within: float | None = None


@dataclass(frozen=True, slots=True)
class Close:
    pass


Op = Connect | Send | Receive | Close
Conversation = Generator[Op, Any, T]

RECEIVE = Receive()
CLOSE = Close()


def exchange(request: bytes, complete: Callable[[bytes], T | None]) -> Conversation[T]:
    """Send ``request`` on the open socket, then feed what comes back to
    ``complete`` (``b""`` at end of stream) until it returns a value."""
    yield Send(request)
    while True:
        data: bytes = yield RECEIVE
        result = complete(data)
        if result is not None:
            return result
