"""The sample hook, run directly: argv and stdin forms, forged lines, lock, quiet hours, mail, push.

``logger`` and ``sendmail`` are stand-ins on PATH that record what they were
given; the push goes to an HTTP server on 127.0.0.1 through the real curl.
"""

from __future__ import annotations

import datetime
import fcntl
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, WAIT, need_program

HOOK = ROOT / "sample" / "hooks" / "whitegoodsd-hook"
LINE = "Nov 21 02:15:24 host whitegoodsd[812]: WASHER is FINISHED.\n"  # as "^" passes it

RECORDER = """#!/bin/sh
printf '%s\\n' "$*" >> "{out}.args"
[ "$(basename "$0")" = sendmail ] && cat >> "{out}.stdin"
exit 0
"""


@dataclass
class Hook:
    """The sample hook with a private environment and recorded side effects."""

    dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.dir / "events.log"

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HOOK), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=True,
        )

    def logged(self) -> list[str]:
        """What was passed to logger, one call a line."""
        path = self.dir / "logger.args"
        return path.read_text().splitlines() if path.exists() else []

    def events(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def quiet_window(inside: bool) -> tuple[str, str]:
    """Quiet hours that hold the current hour (and the next), or neither."""
    hour = datetime.datetime.now().hour
    start = hour if inside else (hour + 2) % 24
    return str(start), str((start + 2) % 24)


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    need_program("bash", "apt-get install bash")
    need_program("flock", "apt-get install util-linux")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("logger", "sendmail"):
        stub = stubs / name
        stub.write_text(RECORDER.format(out=tmp_path / name))
        stub.chmod(0o755)
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "WHITEGOODSD_HOOK_CONFIG": os.devnull,
        "HOOK_LOG": str(tmp_path / "events.log"),
        "HOOK_LOCK_DIR": str(tmp_path),
        "HOOK_QUIET_FROM": "0",
        "HOOK_QUIET_UNTIL": "0",
        "HOOK_MIN_INTERVAL": "0",
    }
    return Hook(tmp_path, env)


def test_the_argument_form_takes_the_message_after_the_tag(hook: Hook) -> None:
    hook.run(LINE)
    assert hook.events() == ["WASHER is FINISHED."]
    assert hook.logged() == ["-t whitegoodsd-hook -p user.info -- WASHER FINISHED handled: log"]


def test_the_stdin_form_handles_every_line_and_ignores_others(hook: Hook) -> None:
    hook.run(
        stdin="WASHER is FINISHED.\n"
        "DRYER is FINISHED. Ran 1:32:05, used 0.850 kWh, peak 2,150 W.\n"
        "WASHER is RUNNING.\n"  # not in HOOK_EVENTS
        "Starting.\n"
        " TUMBLE DRYER is FINISHED."  # %msg% with its space, and no final newline
    )
    assert hook.events() == [
        "WASHER is FINISHED.",
        "DRYER is FINISHED. Ran 1:32:05, used 0.850 kWh, peak 2,150 W.",
        "TUMBLE DRYER is FINISHED.",
    ]
    hook.env["HOOK_EVENTS"] = "RUNNING FINISHED"
    hook.run("WASHER is RUNNING.")
    assert hook.events()[-1] == "WASHER is RUNNING."


@pytest.mark.parametrize(
    "forged",
    [
        "$(touch {dir}/pwned) is FINISHED.",
        "`touch {dir}/pwned` is FINISHED.",
        "WASHER is FINISHED.; touch {dir}/pwned",
        "WASHER is FINISHED. $(touch {dir}/pwned)",
        "../../{dir}/pwned is FINISHED.",
        "WASHER is FINISHED.\rSubject: spoofed",
        "W" * 70 + " is FINISHED.",
    ],
)
def test_forged_lines_do_nothing(hook: Hook, forged: str) -> None:
    text = forged.format(dir=hook.dir)
    hook.env["HOOK_MAIL_TO"] = "root"
    hook.run(f"Nov 21 02:15:24 host whitegoodsd[1]: {text}")
    hook.run(stdin=text + "\n")
    assert not (hook.dir / "pwned").exists()
    assert hook.events() == []
    assert not (hook.dir / "sendmail.args").exists()
    assert (
        hook.logged()
        == ["-t whitegoodsd-hook -p user.notice -- ignored a line that is not a whitegoodsd event"]
        * 2
    )


def test_quiet_hours_log_and_send_nothing(hook: Hook) -> None:
    hook.env["HOOK_QUIET_FROM"], hook.env["HOOK_QUIET_UNTIL"] = quiet_window(inside=True)
    hook.env["HOOK_MAIL_TO"] = "root"
    hook.run(LINE)
    assert hook.events() == []
    assert not (hook.dir / "sendmail.args").exists()
    [line] = hook.logged()
    assert "WASHER FINISHED: quiet hours" in line
    # The hook's own lines never repeat "NAME is FINISHED": a "contains" rule
    # would run the hook on them again, and again.
    assert " is FINISHED" not in line
    hook.env["HOOK_QUIET_FROM"], hook.env["HOOK_QUIET_UNTIL"] = quiet_window(inside=False)
    hook.run(LINE)
    assert hook.events() == ["WASHER is FINISHED."]


def test_no_overlapping_runs_for_one_appliance(hook: Hook) -> None:
    with open(hook.dir / "whitegoodsd-hook.WASHER.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        hook.run(LINE)
        assert hook.events() == []
        assert hook.logged()[-1].endswith("WASHER FINISHED: another run is busy; skipped")
        hook.run("DRYER is FINISHED.")  # another appliance is not held up
        assert hook.events() == ["DRYER is FINISHED."]
    hook.run(LINE)
    assert hook.events() == ["DRYER is FINISHED.", "WASHER is FINISHED."]


def test_a_flood_gives_one_notice_per_interval(hook: Hook) -> None:
    hook.env["HOOK_MIN_INTERVAL"] = "3600"
    for _ in range(3):
        hook.run(LINE)
    hook.run("DRYER is FINISHED.")
    assert hook.events() == ["WASHER is FINISHED.", "DRYER is FINISHED."]
    assert sum("already notified" in line for line in hook.logged()) == 2


def test_mail_goes_through_sendmail(hook: Hook) -> None:
    hook.env["HOOK_MAIL_TO"] = "you@example.org"
    hook.env["HOOK_MAIL_FROM"] = "whitegoodsd@example.org"
    hook.run(LINE)
    assert (hook.dir / "sendmail.args").read_text() == "-oi -t\n"
    mail = (hook.dir / "sendmail.stdin").read_text()
    head, _, body = mail.partition("\n\n")
    assert head.splitlines() == [
        "From: whitegoodsd@example.org",
        "To: you@example.org",
        "Subject: WASHER is FINISHED.",
        "Auto-Submitted: auto-generated",
    ]
    assert body == "WASHER is FINISHED.\n"
    assert hook.logged()[-1].endswith("WASHER FINISHED handled: log mail")


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append((self.path, dict(self.headers), self.rfile.read(length)))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"received": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_push_posts_the_message(hook: Hook, receiver: tuple[str, type[Receiver]]) -> None:
    need_program("curl", "apt-get install curl")
    url, handler = receiver
    hook.env["HOOK_PUSH_URL"] = f"{url}/washer-topic"
    hook.env["HOOK_PUSH_TOKEN"] = "tk_secret"
    hook.run(LINE)
    [(path, headers, body)] = handler.received
    assert path == "/washer-topic"
    assert body == b"WASHER is FINISHED."
    assert headers["Title"] == "whitegoodsd"
    assert headers["Authorization"] == "Bearer tk_secret"
    assert hook.logged()[-1].endswith("WASHER FINISHED handled: log push")

    handler.status = 500
    hook.env["HOOK_PUSH_TOKEN"] = ""
    hook.run("DRYER is FINISHED.")
    assert "Authorization" not in handler.received[-1][1]
    assert any("DRYER FINISHED: push failed" in line for line in hook.logged())


MESSAGE = "WASHER is FINISHED. Ran 1:32:05, used 0.850 kWh, peak 2,150 W."


def test_the_environment_form_takes_the_event_as_whitegoodsd_passes_it(hook: Hook) -> None:
    hook.env.update(
        WHITEGOODSD_APPLIANCE="WASHER", WHITEGOODSD_EVENT="FINISHED", WHITEGOODSD_MESSAGE=MESSAGE
    )
    hook.run()
    del hook.env["WHITEGOODSD_MESSAGE"]  # without it, the plain line
    hook.env["WHITEGOODSD_APPLIANCE"] = "DRYER"
    hook.run()
    hook.env["WHITEGOODSD_EVENT"] = "RUNNING"  # not in HOOK_EVENTS
    hook.run()
    hook.env["WHITEGOODSD_APPLIANCE"], hook.env["WHITEGOODSD_EVENT"] = "$(touch x)", "FINISHED"
    hook.run()
    assert hook.events() == [MESSAGE, "DRYER is FINISHED."]
    assert hook.logged()[-1].endswith("ignored a line that is not a whitegoodsd event")


def test_whitegoodsd_runs_the_hook_as_on_finished(
    hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import logging

    from whitegoodsd import config, notices
    from whitegoodsd.outputs.commands import CommandOutput
    from whitegoodsd.status import CycleRecord

    for name, value in hook.env.items():
        monkeypatch.setenv(name, value)
    ini = tmp_path / "whitegoodsd.ini"
    ini.write_text(
        f"[whitegoodsd]\nappliances = WASHER\non_finished = {HOOK}\n"
        "[WASHER]\nsmartplug = 127.0.0.1\nthreshold_running_mw = 4000\nminsamples = 2\n"
    )
    logger = logging.getLogger("test-hook-on-finished")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    done = threading.Event()

    class Done(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.text = record.getMessage()
            done.set()

    handler = Done()
    logger.addHandler(handler)
    record = CycleRecord(started=0.0, duration=5525, energy_wh=850.0, peak_mw=2_150_000)

    async def main() -> None:
        output = CommandOutput(config.load(str(ini)), logger)
        output.notice(notices.Notice("WASHER", notices.FINISHED, 1_763_700_924.0, record))
        await asyncio.to_thread(done.wait, WAIT)
        await output.aclose()

    asyncio.run(main())
    assert handler.text == "on_finished for WASHER: exit status 0, no output."
    assert hook.events() == [MESSAGE]
    assert hook.logged()[-1].endswith("WASHER FINISHED handled: log")
