"""Shared fixtures: a syslog socket to listen on, real peers, INI files, the daemon.

Peers (programs and libraries the tests talk to) are found by ``need``:
without one a test is skipped with the reason, except under ``CI=true``, where
a missing peer fails the test.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import pytest
from hypothesis import settings

from whitegoodsd.errors import ProtocolError

from kasa_plug import KasaTestPlug
from kit import WAIT, FakeClock, LoopThread
from mosquitto import Mosquitto, Subscriber

# Re-exported: tests take the kit from conftest as well.
__all__ = ["WAIT", "FakeClock", "KasaTestPlug", "LoopThread"]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("WHITEGOODSD_PEERS", ROOT / ".peers"))
NODE_MODULES = PEERS / "node" / "node_modules"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# Property tests: more examples under CI (HYPOTHESIS_PROFILE picks one by hand).
settings.register_profile("ci", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if under_ci() else "default"))


def need(ok: bool, reason: str) -> None:
    """Skip (or, under CI=true, fail) unless a peer is available."""
    if ok:
        return
    if under_ci():
        pytest.fail(f"peer missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def need_program(name: str, hint: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
    )
    need(path is not None, f"{name} not installed ({hint})")
    assert path is not None
    return path


# -- syslog -------------------------------------------------------------------


@dataclass(frozen=True)
class SyslogMessage:
    facility: int
    severity: int
    tag: str  # "whitegoodsd[PID]:"
    text: str
    raw: str


def parse_syslog(raw: str) -> SyslogMessage:
    assert raw.startswith("<"), raw
    pri, _, rest = raw[1:].partition(">")
    # "Mmm dd hh:mm:ss " is 16 characters.
    rest = rest[16:]
    tag, _, text = rest.partition(" ")
    return SyslogMessage(int(pri) // 8, int(pri) % 8, tag, text, raw)


class SyslogListener:
    """A UNIX datagram socket standing in for /dev/log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[SyslogMessage] = []

    def wait_for(
        self,
        predicate: Callable[[SyslogMessage], bool],
        timeout: float = WAIT,
        *,
        new: bool = False,
    ) -> SyslogMessage:
        """The first message matching ``predicate``; with ``new``, one not yet received."""
        for message in [] if new else self.messages:
            if predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                texts = "\n".join(m.raw for m in self.messages)
                raise AssertionError(f"no matching syslog line within {timeout} s; got:\n{texts}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            message = parse_syslog(data.decode())
            self.messages.append(message)
            if predicate(message):
                return message

    def wait_text(self, text: str, timeout: float = WAIT, *, new: bool = False) -> SyslogMessage:
        return self.wait_for(lambda m: m.text == text, timeout, new=new)

    def wait_polls(self, name: str, times: int) -> None:
        """Wait for ``times`` more polls of ``name`` (its debug line per reading)."""
        for _ in range(times):
            self.wait_for(lambda m: m.text.startswith(f"{name} current usage is"), new=True)

    def drain(self) -> list[SyslogMessage]:
        """Whatever has arrived so far, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                self.messages.append(parse_syslog(data.decode()))
        finally:
            self.sock.setblocking(True)
        return self.messages

    def texts(self) -> list[str]:
        return [m.text for m in self.drain()]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def fresh_logger() -> Iterator[None]:
    """Each test starts with no syslog handler: lines one test left waiting stay its own."""
    yield
    logger = logging.getLogger("whitegoodsd")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[SyslogListener]:
    listener = SyslogListener(tmp_path / "log.sock")
    yield listener
    listener.close()


# -- INI files ----------------------------------------------------------------


def write_ini(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# -- the daemon as a process --------------------------------------------------


class Daemon:
    """``python -m whitegoodsd`` in a subprocess."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.stderr_path = cwd / "daemon.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "whitegoodsd", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, timeout: float = WAIT) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        finally:
            self._close()

    def _close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._stderr.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str) -> Daemon:
        d = Daemon(list(args), tmp_path)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


# -- tplink-smarthome-simulator (npm) -----------------------------------------


class KasaSimulator:
    """One tplink-smarthome-simulator device, its emeter set from the test."""

    def __init__(self, model: str) -> None:
        node = need_program("node", "apt-get install nodejs")
        need(
            (NODE_MODULES / "tplink-smarthome-simulator").is_dir(),
            f"tplink-smarthome-simulator not installed in {NODE_MODULES} (run ./run test)",
        )
        # The simulator binds UDP port 0, then TCP on the same number, which
        # another program may hold: then it exits, and a new try gets a new port.
        for _ in range(5):
            self.process = subprocess.Popen(
                [node, str(ROOT / "tests" / "peers" / "kasa-simulator.js"), model],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
                text=True,
            )
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            if line:
                break
            self.close()
        assert line, "the simulator exited before listening"
        self.port: int = json.loads(line)["port"]

    def set(self, **values: float) -> None:
        """Set emeter realtime values in W, V, A, kWh; returns once applied."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(values) + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture
def kasa_simulator() -> Iterator[Callable[[str], KasaSimulator]]:
    started: list[KasaSimulator] = []

    def start(model: str) -> KasaSimulator:
        sim = KasaSimulator(model)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


# -- Mosquitto (Debian) ---------------------------------------------------------


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers on free loopback ports: ``mosquitto()`` or ``mosquitto(users={...})``."""
    started: list[Mosquitto] = []

    def start(
        users: dict[str, str] | None = None,
        persistence: bool = False,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> Mosquitto:
        program = need_program("mosquitto", "apt-get install mosquitto")
        passwd = need_program("mosquitto_passwd", "apt-get install mosquitto") if users else None
        folder = tmp_path / f"mosquitto{len(started)}"
        folder.mkdir()
        broker = Mosquitto(
            folder, program, users=users, passwd_program=passwd, persistence=persistence, tls=tls
        )
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def subscriber() -> Iterator[Callable[..., Subscriber]]:
    """``mosquitto_sub`` on a broker: ``subscriber(port, "#")``, ready when returned."""
    started: list[Subscriber] = []

    def start(port: int, topic: str = "#", *extra: str) -> Subscriber:
        program = need_program("mosquitto_sub", "apt-get install mosquitto-clients")
        pub = need_program("mosquitto_pub", "apt-get install mosquitto-clients")
        sub = Subscriber(program, port, topic, extra=extra)
        started.append(sub)
        if topic == "#":
            sub.ready(pub, port)
        return sub

    yield start
    for sub in started:
        sub.close()


# -- an event loop in a thread, for in-process servers a blocking test drives --


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


# -- the detection tests' threaded Kasa plug ----------------------------------


@pytest.fixture
def plugs() -> Iterator[list[KasaTestPlug]]:
    """Threaded test plugs, closed after the test; append the ones you start."""
    started: list[KasaTestPlug] = []
    yield started
    for plug in started:
        plug.close()


# -- fuzzing ------------------------------------------------------------------

_Parsed = TypeVar("_Parsed")


def attempt(parse: Callable[[], _Parsed]) -> _Parsed | ProtocolError:
    """What ``parse()`` returns, or the ProtocolError it raises (anything else escapes)."""
    try:
        return parse()
    except ProtocolError as exc:
        return exc


def one_line(error: ProtocolError) -> bool:
    """Whether an error reads as one short syslog line."""
    return "\n" not in str(error) and len(str(error)) < 200
