"""A real Mosquitto broker for the tests: a loopback port, a generated config.

``Mosquitto(folder)`` starts ``mosquitto -c`` on a free 127.0.0.1 port,
anonymous, or with ``users={"name": "password"}`` a password file made by
``mosquitto_passwd`` and anonymous access refused.  ``stop()`` and ``start()``
take it away and bring it back on the same port (retained messages and
sessions are lost with it, unless made with ``persistence=True``).  ``Subscriber`` is a
``mosquitto_sub`` process collecting ``topic payload`` lines.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import threading
import time
from pathlib import Path

from kit import WAIT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """One broker process; ``port`` stays the same across stop() and start()."""

    def __init__(
        self,
        folder: Path,
        program: str,
        *,
        users: dict[str, str] | None = None,
        passwd_program: str | None = None,
        persistence: bool = False,
        tls: tuple[Path, Path, Path] | None = None,  # CA, certificate, key (PEM)
    ) -> None:
        self.folder = folder
        self.program = program
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        # As root, mosquitto would become user "mosquitto", who cannot read the test's files.
        user = pwd.getpwuid(os.geteuid()).pw_name
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr"]
        if persistence:  # sessions and retained messages kept across stop() and start()
            lines += ["persistence true", f"persistence_location {folder}/"]
        else:
            lines.append("persistence false")
        lines.append(f"user {user}")
        if tls is not None:
            lines += [f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"]
        if users:
            assert passwd_program is not None
            passwords = folder / "mosquitto.passwd"
            passwords.touch(mode=0o600)
            for name, password in users.items():
                subprocess.run(
                    [passwd_program, "-b", str(passwords), name, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "mosquitto.log"
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.program, "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + WAIT
        while True:  # listening once a connection is accepted
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-500:]}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class Subscriber:
    """``mosquitto_sub -v`` on a topic filter; lines kept as (topic, payload)."""

    def __init__(
        self, program: str, port: int, topic: str = "#", *, extra: tuple[str, ...] = ()
    ) -> None:
        self.process = subprocess.Popen(
            [program, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-v", "-q", "1",
             "-F", "%t\t%r\t%p", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.messages: list[tuple[str, bool, str]] = []  # topic, retained, payload
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            topic, retained, payload = raw.decode("utf-8", "replace").rstrip("\n").split("\t", 2)
            with self._changed:
                self.messages.append((topic, retained == "1", payload))
                self._changed.notify_all()

    def wait_for(
        self, topic: str, payload: str | None = None, *, after: int = 0, timeout: float = WAIT
    ) -> tuple[int, tuple[str, bool, str]]:
        """The first message on ``topic`` (with ``payload``) from index ``after`` on."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self.messages)):
                    message = self.messages[index]
                    if message[0] == topic and (payload is None or message[2] == payload):
                        return index, message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = "\n".join(f"{t} {p}" for t, _, p in self.messages[-40:])
                    raise AssertionError(f"no {topic} {payload or ''} within {timeout} s:\n{got}")
                self._changed.wait(remaining)

    def ready(self, pub_program: str, port: int) -> None:
        """Return once the subscription is in place (a probe message came back)."""
        for attempt in range(int(WAIT / 0.2)):
            subprocess.run(
                [pub_program, "-h", "127.0.0.1", "-p", str(port), "-t", "test/ready",
                 "-m", str(attempt)],
                check=True,
            )  # fmt: skip
            try:
                self.wait_for("test/ready", str(attempt), timeout=0.2)
                return
            except AssertionError:
                continue
        raise AssertionError("mosquitto_sub never subscribed")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(WAIT)
        if self.process.stdout:
            self.process.stdout.close()
