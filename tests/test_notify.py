"""notify = URL: Apprise against an HTTP receiver on 127.0.0.1, on a clock the test moves.

Apprise is the real library, speaking its json:// and ntfy:// protocols to a
threaded HTTP server that records what it gets.  Quiet hours, reminders and
back-off run on a manual clock: the test waits until the output sleeps, sees
until when, and moves the clock there, so nothing depends on real time.
"""

from __future__ import annotations

import asyncio
import datetime
import http.server
import json
import logging
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_commands import CYCLE, Lines, in_thread
from test_cycles_end_to_end import load_config, replay

from whitegoodsd import config as configuration
from whitegoodsd import notices
from whitegoodsd.commands import check
from whitegoodsd.monitor import Monitor
from whitegoodsd.notices import Notice
from whitegoodsd.outputs import notify
from whitegoodsd.outputs.notify import NotifyOutput, quiet_until

from conftest import WAIT, FakeClock, SyslogListener, need, write_ini
from kasa_plug import DRYER, KasaTestPlug, ProfilePower

try:
    import apprise  # noqa: F401

    HAVE_APPRISE = True
except ImportError:
    HAVE_APPRISE = False


def local(day: int, hour: int, minute: int = 0) -> float:
    """Local wall-clock time on a day of November 2025, as epoch seconds."""
    return datetime.datetime(2025, 11, day, hour, minute).timestamp()


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records each POST; answers with the next status of ``statuses`` (then 200)."""

    requests: list[tuple[str, bytes]]
    statuses: list[int]
    arrived: threading.Condition
    hold: threading.Event  # cleared: the answer waits until it is set

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.arrived:
            self.requests.append((self.path, body))
            status = self.statuses.pop(0) if self.statuses else 200
            self.arrived.notify_all()
        self.hold.wait(WAIT)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    def __init__(self) -> None:
        self.handler: type[Receiver] = type(
            "Handler",
            (Receiver,),
            {
                "requests": [],
                "statuses": [],
                "arrived": threading.Condition(),
                "hold": threading.Event(),
            },
        )
        self.handler.hold.set()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    @property
    def requests(self) -> list[tuple[str, bytes]]:
        return self.handler.requests

    def messages(self) -> list[str]:
        return [json.loads(body)["message"] for _, body in self.requests]

    async def wait(self, count: int) -> None:
        """Until ``count`` requests have come."""

        def wait() -> None:
            with self.handler.arrived:
                assert self.handler.arrived.wait_for(lambda: len(self.requests) >= count, WAIT)

        await in_thread(wait)

    def close(self) -> None:
        self.handler.hold.set()
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def server() -> Iterator[Server]:
    need(HAVE_APPRISE, "apprise not installed (pip install apprise)")
    receiver = Server()
    yield receiver
    receiver.close()


class ManualClock:
    """A wall clock that moves only when the test says; sleepers wake when it passes them."""

    def __init__(self, now: float) -> None:
        self._now = now
        self.sleepers: list[float] = []
        self._changed = asyncio.Event()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        self.sleepers.append(when)
        self._changed.set()
        try:
            while self._now < when:
                self._changed.clear()
                await self._changed.wait()
        finally:
            self.sleepers.remove(when)
            self._changed.set()

    async def next_sleeper(self) -> float:
        """The earliest wake time still ahead, once something sleeps until then."""
        while not self.waiting():
            self._changed.clear()
            await self._changed.wait()
        return min(self.waiting())

    def waiting(self) -> list[float]:
        return [when for when in self.sleepers if when > self._now]

    def advance(self, to: float) -> None:
        self._now = max(self._now, to)
        self._changed.set()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, WAIT))


def load(tmp_path: Path, main: str, washer: str = "") -> configuration.Config:
    text = (
        f"[whitegoodsd]\nappliances = WASHER\n{main}\n"
        f"[WASHER]\nsmartplug = 127.0.0.1:9999\nthreshold_running_mw = 4000\nminsamples = 2\n"
        f"{washer}\n"
    )
    return configuration.load(str(write_ini(tmp_path / "whitegoodsd.ini", text)))


def output(config: configuration.Config, clock: ManualClock) -> tuple[NotifyOutput, Lines]:
    logger = logging.getLogger(f"test-notify-{id(config)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    lines = Lines()
    logger.addHandler(lines)
    return NotifyOutput(config, logger, clock), lines


def finished(at: float) -> Notice:
    return Notice("WASHER", notices.FINISHED, at, CYCLE)


def test_a_finished_cycle_goes_to_a_json_and_an_ntfy_url(tmp_path: Path, server: Server) -> None:
    config = load(tmp_path, f"notify = {server.url()}, ntfy://127.0.0.1:{server.port}/washer")
    clock = ManualClock(local(21, 12))
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(Notice("WASHER", notices.RUNNING, clock.now()))  # not in notify_events
        out.notice(finished(clock.now()))
        await lines.wait("notify for WASHER FINISHED: sent.")
        await out.aclose()

    run(main())
    by_path = {path: json.loads(body) for path, body in server.requests}
    assert by_path["/hook"]["message"] == "Washer finished after 1:32, 0.85 kWh."
    assert by_path["/hook"]["title"] == "whitegoodsd"
    assert by_path["/"] == {
        "topic": "washer",
        "title": "whitegoodsd",
        "message": "Washer finished after 1:32, 0.85 kWh.",
    }
    assert len(server.requests) == 2


def test_the_template_and_the_events_are_the_users(tmp_path: Path, server: Server) -> None:
    config = load(
        tmp_path,
        f"notify = {server.url()}\nnotify_events = FINISHED, unreachable\n"
        "notify_template = {appliance}; {event} at {time}: {duration_s} s, {energy_wh} Wh, "
        "{peak} # {message}",
    )
    clock = ManualClock(local(21, 12, 5))
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        await server.wait(1)
        out.notice(Notice("WASHER", notices.UNREACHABLE, clock.now(), reason="timed out"))
        await server.wait(2)
        await lines.wait("notify for WASHER UNREACHABLE: sent.")
        await out.aclose()

    run(main())
    assert server.messages() == [
        "WASHER; FINISHED at 12:05: 5525 s, 850.0 Wh, 2,150 W # "
        "WASHER is FINISHED. Ran 1:32:05, used 0.850 kWh, peak 2,150 W.",
        "WASHER is UNREACHABLE. timed out",
    ]


def test_quiet_hours_hold_a_message_until_they_end(tmp_path: Path, server: Server) -> None:
    config = load(tmp_path, f"notify = {server.url()}\nquiet_hours = 23:00-07:00")
    clock = ManualClock(local(21, 23, 30))
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        assert await clock.next_sleeper() == local(22, 7)
        assert lines.texts == ["notify for WASHER FINISHED: held for quiet hours until 07:00."]
        clock.advance(local(22, 6, 59))
        assert await clock.next_sleeper() == local(22, 7)
        assert server.requests == []
        clock.advance(local(22, 7))
        await lines.wait("notify for WASHER FINISHED: sent.")
        await out.aclose()

    run(main())
    assert server.messages() == ["Washer finished after 1:32, 0.85 kWh."]


def test_an_appliance_may_have_no_quiet_hours(tmp_path: Path, server: Server) -> None:
    config = load(
        tmp_path, f"notify = {server.url()}\nquiet_hours = 23:00-07:00", "quiet_hours = none"
    )
    clock = ManualClock(local(21, 23, 30))
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        await lines.wait("notify for WASHER FINISHED: sent.")
        await out.aclose()

    run(main())
    assert len(server.requests) == 1


def test_reminders_repeat_the_message_until_the_count_is_spent(
    tmp_path: Path, server: Server
) -> None:
    config = load(tmp_path, f"notify = {server.url()}\nremind_every = 900\nremind_times = 2")
    start = local(21, 12)
    clock = ManualClock(start)
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        for n in (1, 2):
            assert await clock.next_sleeper() == start + 900 * n
            clock.advance(start + 900 * n)
            await lines.wait(f"notify for WASHER FINISHED \\(reminder {n}\\): sent.")
        assert clock.waiting() == []  # the count is spent
        await out.aclose()

    run(main())
    text = "Washer finished after 1:32, 0.85 kWh."
    assert server.messages() == [text, f"Reminder: {text}", f"Reminder: {text}"]


def test_the_next_running_ends_the_reminders(tmp_path: Path, server: Server) -> None:
    config = load(tmp_path, f"notify = {server.url()}\nremind_every = 600")
    start = local(21, 12)
    clock = ManualClock(start)
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        assert await clock.next_sleeper() == start + 600
        clock.advance(start + 600)
        await lines.wait("notify for WASHER FINISHED \\(reminder 1\\): sent.")
        assert await clock.next_sleeper() == start + 1200
        out.notice(Notice("WASHER", notices.RUNNING, clock.now()))
        await asyncio.sleep(0)  # the cancelled reminder unwinds
        assert clock.waiting() == []
        await out.aclose()

    run(main())
    assert len(server.requests) == 2


def test_a_failed_send_is_tried_again_with_back_off(tmp_path: Path, server: Server) -> None:
    server.handler.statuses[:] = [500, 503]
    config = load(tmp_path, f"notify = {server.url()}")
    start = local(21, 12)
    clock = ManualClock(start)
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        assert await clock.next_sleeper() == start + notify.FIRST_RETRY
        clock.advance(start + notify.FIRST_RETRY)
        assert await clock.next_sleeper() == start + 3 * notify.FIRST_RETRY
        clock.advance(start + 3 * notify.FIRST_RETRY)
        await lines.wait("notify for WASHER FINISHED: sent.")
        await out.aclose()

    run(main())
    assert len(server.requests) == 3
    failed = [t for t in lines.texts if "failed" in t]
    assert failed[0].startswith(
        f"notify for WASHER FINISHED failed, trying again in 10 s: json://127.0.0.1:{server.port}: "
    )
    assert "500" in failed[0] and "503" in failed[1]
    assert "trying again in 20 s" in failed[1]


def test_only_the_urls_that_failed_are_tried_again(tmp_path: Path, server: Server) -> None:
    config = load(tmp_path, f"notify = {server.url('good')}, json://127.0.0.1:1/refused")
    start = local(21, 12)
    clock = ManualClock(start)
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        for _ in range(2):
            clock.advance(await clock.next_sleeper())
        await clock.next_sleeper()
        await out.aclose()

    run(main())
    assert [path for path, _ in server.requests] == ["/good"]
    failed = [t for t in lines.texts if "failed" in t]
    assert len(failed) == 3
    assert all(": json://127.0.0.1:1: " in t for t in failed)
    assert lines.texts[-1] == "notify for WASHER FINISHED lost: whitegoodsd is stopping."


def test_a_message_that_keeps_failing_is_lost_after_a_bounded_time(
    tmp_path: Path, server: Server
) -> None:
    server.handler.statuses[:] = [500] * 100
    config = load(tmp_path, f"notify = {server.url()}")
    start = local(21, 12)
    clock = ManualClock(start)
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        while not any(" lost: " in t for t in lines.texts):
            waking = asyncio.ensure_future(clock.next_sleeper())
            lost = asyncio.ensure_future(lines.wait("notify for WASHER FINISHED lost: "))
            done, _ = await asyncio.wait({waking, lost}, return_when=asyncio.FIRST_COMPLETED)
            waking.cancel()
            lost.cancel()
            if waking in done:
                clock.advance(waking.result())
        await out.aclose()

    run(main())
    [lost] = [t for t in lines.texts if " lost: " in t]
    assert lost.startswith("notify for WASHER FINISHED lost: failed for ")
    assert clock.now() - start <= notify.RETRY_FOR
    # Back-off: 10, 20, 40, ... seconds, at most LONGEST_RETRY, within RETRY_FOR.
    delays = [t.split("trying again in ")[1].split(" s")[0] for t in lines.texts if "again" in t]
    assert delays[:4] == ["10", "20", "40", "80"]
    assert max(float(d) for d in delays) <= notify.LONGEST_RETRY
    assert len(server.requests) == len(delays) + 1


def test_stopping_loses_held_messages_with_a_line(tmp_path: Path, server: Server) -> None:
    config = load(tmp_path, f"notify = {server.url()}\nquiet_hours = 22:00-06:30")
    clock = ManualClock(local(21, 23))
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        await clock.next_sleeper()
        await out.aclose()

    run(main())
    assert lines.texts[-1] == "notify for WASHER FINISHED lost: whitegoodsd is stopping."
    assert server.requests == []


def test_a_slow_receiver_never_holds_up_detection(
    tmp_path: Path, server: Server, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    server.handler.hold.clear()  # every answer waits until the test lets it go
    clock = FakeClock()
    profile = ProfilePower(DRYER, clock, start=clock.now + 600)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    config = load_config(
        tmp_path,
        syslog,
        {"DRYER": plug.port},
        main=f"notify = {server.url()}\nnotify_events = RUNNING FINISHED",
    )
    monitor = Monitor(config, wallclock=clock)

    async def main() -> None:
        await replay(monitor, clock, profile.end + 3600)
        assert monitor.statuses()[0].cycles == 1
        await server.wait(2)  # both asked for, neither answered yet
        server.handler.hold.set()
        await in_thread(
            lambda: syslog.wait_for(lambda m: m.text == "notify for DRYER FINISHED: sent.")
        )
        await monitor.close()

    run(main())
    assert server.messages()[0] == "DRYER is RUNNING."
    assert server.messages()[1].startswith("Dryer finished after ")


@pytest.mark.parametrize(
    ("now", "window", "until"),
    [
        (local(21, 23, 30), (23 * 60, 7 * 60), local(22, 7)),
        (local(22, 3), (23 * 60, 7 * 60), local(22, 7)),
        (local(22, 7), (23 * 60, 7 * 60), None),
        (local(21, 22, 59), (23 * 60, 7 * 60), None),
        (local(21, 13), (12 * 60 + 30, 14 * 60), local(21, 14)),
        (local(21, 14, 1), (12 * 60 + 30, 14 * 60), None),
        (local(21, 13), None, None),
    ],
)
def test_quiet_until(now: float, window: tuple[int, int] | None, until: float | None) -> None:
    assert quiet_until(now, window) == until


def test_notify_keys_are_checked_when_the_file_is_read(tmp_path: Path) -> None:
    need(HAVE_APPRISE, "apprise not installed (pip install apprise)")
    config = load(
        tmp_path,
        "notify = mailto://u:p@example.org?to=a@example.org,b@example.org, "
        "ntfy://127.0.0.1/topic\nquiet_hours = 22:30-6:45\nremind_every = 900",
        "notify_events = finished running\nremind_times = 5",
    )
    [washer] = config.appliances
    settings = washer.notifications
    assert settings.notify == (
        "mailto://u:p@example.org?to=a@example.org,b@example.org",
        "ntfy://127.0.0.1/topic",
    )
    assert settings.quiet_hours == (22 * 60 + 30, 6 * 60 + 45)
    assert (settings.remind_every, settings.remind_times) == (900, 5)
    assert settings.notify_events == ("FINISHED", "RUNNING")
    assert check.summary(config).endswith("\n    notify 2 URL(s) of FINISHED RUNNING")
    for main, message in [
        ("notify = nosuchscheme://x", "notify: Apprise cannot use this nosuchscheme:// URL"),
        ("notify = json://a b", "notify: expected URL"),
        ("notify_template = {appliance} {kwh}", "notify_template: unknown field {kwh}"),
        ("notify_template = {appliance!r}", "takes no format or conversion"),
        ("notify_template = {appliance", "notify_template: "),
        ("quiet_hours = 23:00", "quiet_hours: expected HH:MM-HH:MM"),
        ("quiet_hours = 7:00-7:00", "starts where it ends"),
        ("notify_events = FINISHED DONE", "notify_events: unknown event 'DONE'"),
        ("remind_times = 0", "remind_times: must be at least 1"),
    ]:
        with pytest.raises(configuration.ConfigError, match=message.replace("{", "\\{")):
            load(tmp_path, main)


def test_a_reload_keeps_the_reminders_and_takes_the_new_urls(
    tmp_path: Path, server: Server
) -> None:
    from whitegoodsd import outputs

    config = load(tmp_path, f"notify = {server.url('old')}\nremind_every = 600")
    start = local(21, 12)
    clock = ManualClock(start)
    out, lines = output(config, clock)

    async def main() -> None:
        out.notice(finished(clock.now()))
        assert await clock.next_sleeper() == start + 600
        reloaded = load(tmp_path, f"notify = {server.url('new')}\nremind_every = 600")
        assert outputs.rebuild([out], reloaded) == [out]
        clock.advance(start + 600)
        await lines.wait("notify for WASHER FINISHED \\(reminder 1\\): sent.")
        await out.aclose()

    run(main())
    assert [path for path, _ in server.requests] == ["/old", "/new"]
