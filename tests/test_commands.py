"""on_running / on_finished / on_unreachable / on_reachable: real commands through a real /bin/sh.

The command output runs on this test's event loop; its lines are caught by a
logging handler that the test waits on.  Commands that must stay busy wait
on a FIFO that the test opens when it wants them to go on, so no test
sleeps or depends on how fast anything is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from test_cycles_end_to_end import load_config, replay

from whitegoodsd import config as configuration
from whitegoodsd import messages, notices
from whitegoodsd.commands import check
from whitegoodsd.monitor import Monitor
from whitegoodsd.notices import Notice
from whitegoodsd.outputs import commands
from whitegoodsd.outputs.commands import CommandOutput
from whitegoodsd.status import CycleRecord

from conftest import WAIT, FakeClock, SyslogListener, need_program, write_ini
from kasa_plug import DRYER, KasaTestPlug, ProfilePower

AT = 1_763_700_924.0  # 2025-11-21 04:55:24 UTC
CYCLE = CycleRecord(started=AT - 5525, duration=5525.4, energy_wh=850.04, peak_mw=2_150_400)


class Lines(logging.Handler):
    """The output's log lines, with a way to wait for them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    @property
    def texts(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    async def until(self, check: Callable[[list[str]], bool]) -> None:
        while not check(self.texts):
            self._changed.clear()
            await self._changed.wait()

    async def wait(self, pattern: str, count: int = 1) -> str:
        """The ``count``-th line that ``pattern`` matches from its start, once there."""

        def matching(texts: list[str]) -> list[str]:
            return [t for t in texts if re.match(pattern, t)]

        await self.until(lambda texts: len(matching(texts)) >= count)
        return matching(self.texts)[count - 1]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, WAIT))


def load(tmp_path: Path, main: str = "", **sections: str) -> configuration.Config:
    names = list(sections) or ["WASHER"]
    text = f"[whitegoodsd]\nappliances = {', '.join(names)}\n{main}\n" + "".join(
        f"[{name}]\nsmartplug = 127.0.0.1:9999\nthreshold_running_mw = 4000\nminsamples = 2\n"
        f"{sections.get(name, '')}\n"
        for name in names
    )
    return configuration.load(str(write_ini(tmp_path / "whitegoodsd.ini", text)))


def output(config: configuration.Config) -> tuple[CommandOutput, Lines]:
    need_program("sh", "it is /bin/sh")
    logger = logging.getLogger(f"test-commands-{id(config)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    lines = Lines()
    logger.addHandler(lines)
    return CommandOutput(config, logger), lines


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


async def in_thread(function: Callable[[], object]) -> None:
    """Call ``function`` in a daemon thread: one stuck on a FIFO never holds up the exit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def call() -> None:
        function()
        loop.call_soon_threadsafe(finish)

    threading.Thread(target=call, daemon=True).start()
    await done


async def started(ready: Path) -> None:
    """Wait until a command has run ``echo > READY`` (it blocks until this reads)."""
    await in_thread(ready.read_text)


async def release(gate: Path) -> None:
    """Let a command blocked on ``read _ < GATE`` go on (opening blocks until it reads)."""
    await in_thread(lambda: gate.write_text("go\n"))


def test_the_event_is_in_the_environment_and_stdin_is_dev_null(tmp_path: Path) -> None:
    out = tmp_path / "env"
    config = load(
        tmp_path,
        f"on_finished = {{ env; readlink /proc/self/fd/0 </dev/null; readlink /proc/$$/fd/0; }}"
        f" > {out}",
        WASHER="",
    )
    command, lines = output(config)
    os.environ["WHITEGOODSD_PEAK_W"] = "stale"  # a leftover in the daemon's environment

    async def main() -> None:
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await lines.wait("on_finished for WASHER: exit status 0, no output.$")
        await command.aclose()

    try:
        run(main())
    finally:
        del os.environ["WHITEGOODSD_PEAK_W"]
    text = out.read_text()
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert env["WHITEGOODSD_APPLIANCE"] == "WASHER"
    assert env["WHITEGOODSD_EVENT"] == "FINISHED"
    assert env["WHITEGOODSD_DURATION_S"] == "5525"
    assert env["WHITEGOODSD_ENERGY_WH"] == "850.0"
    assert env["WHITEGOODSD_PEAK_W"] == "2150"
    assert env["WHITEGOODSD_MESSAGE"] == (
        "WASHER is FINISHED. Ran 1:32:05, used 0.850 kWh, peak 2,150 W."
    )
    assert "WHITEGOODSD_REASON" not in env
    assert env["PATH"] == os.environ["PATH"]  # the daemon's environment is passed on
    at = env["WHITEGOODSD_AT"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", at), at
    from datetime import datetime

    assert datetime.fromisoformat(at).timestamp() == AT
    assert text.splitlines()[-1] == "/dev/null"


def test_each_event_runs_its_own_command_and_unreachable_carries_the_reason(
    tmp_path: Path,
) -> None:
    out = tmp_path / "events"
    record = f'echo "$WHITEGOODSD_EVENT ${{WHITEGOODSD_REASON-}}" >> {out}'
    config = load(
        tmp_path,
        f"on_running = {record}\non_unreachable = {record}\non_reachable = {record}",
        WASHER="",
        DRYER="on_running =",  # an empty key turns the default off
    )
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.UNREACHABLE, AT, reason="timed out after 5 s"))
        command.notice(Notice("WASHER", notices.REACHABLE, AT))
        command.notice(Notice("DRYER", notices.RUNNING, AT))
        command.notice(Notice("WASHER", notices.RUNNING, AT))
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))  # no on_finished
        await lines.wait("on_running for WASHER: exit status 0")
        await command.aclose()

    run(main())
    assert out.read_text().splitlines() == [
        "UNREACHABLE timed out after 5 s",
        "REACHABLE ",
        "RUNNING ",
    ]
    assert not any("DRYER" in text for text in lines.texts)


def test_commands_run_in_order_one_at_a_time_per_appliance(tmp_path: Path) -> None:
    out = tmp_path / "order"
    gate, ready = fifo(tmp_path / "gate"), fifo(tmp_path / "ready")
    config = load(
        tmp_path,
        f'on_running = echo "$WHITEGOODSD_APPLIANCE start" >> {out}; echo > {ready}; '
        f"read _ < {gate}; "
        f'echo "$WHITEGOODSD_APPLIANCE end" >> {out}\n'
        f'on_finished = echo "$WHITEGOODSD_APPLIANCE FINISHED" >> {out}',
        WASHER="",
        DRYER=f'on_running = echo "DRYER RUNNING" >> {out}',
    )
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.RUNNING, AT))
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        command.notice(Notice("DRYER", notices.RUNNING, AT))
        await started(ready)
        # The dryer's command is not held up by the washer's, which is still busy.
        await lines.wait("on_running for DRYER: exit status 0")
        assert "DRYER RUNNING" in out.read_text().splitlines()
        assert "WASHER start" in out.read_text().splitlines()
        assert not any(t.startswith("on_finished for WASHER") for t in lines.texts)
        await release(gate)
        await lines.wait("on_finished for WASHER: exit status 0")
        await command.aclose()

    run(main())
    washer = [line for line in out.read_text().splitlines() if line.startswith("WASHER")]
    assert washer == ["WASHER start", "WASHER end", "WASHER FINISHED"]


def test_output_and_exit_status_make_one_line(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "on_finished = printf 'sent to\\tyou\\nWASHER is FINISHED. again\\n'; "
        "echo oops >&2; exit 3",
    )
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await lines.wait("on_finished for WASHER:")
        await command.aclose()

    run(main())
    [record] = lines.records
    assert record.levelno == logging.WARNING
    # Event words are lowered: an rsyslog rule for "WASHER is FINISHED" does not fire again.
    assert record.getMessage() == (
        "on_finished for WASHER: exit status 3: sent to you WASHER is finished. again oops"
    )


def test_a_command_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    config = load(tmp_path, "on_finished = whitegoodsd-no-such-command --now")
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await lines.wait("on_finished for WASHER:")
        await command.aclose()

    run(main())
    [text] = lines.texts
    assert text.startswith("on_finished for WASHER: exit status 127: ")
    assert "whitegoodsd-no-such-command" in text
    assert "not found" in text


def test_a_shell_that_cannot_start_is_one_line_and_the_next_event_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ran"
    config = load(tmp_path, f"on_finished = echo ran >> {out}\non_running = echo ran >> {out}")
    command, lines = output(config)

    async def main() -> None:
        monkeypatch.setattr(commands, "SHELL", str(tmp_path / "no-such-shell"))
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await lines.wait("on_finished for WASHER:")
        monkeypatch.setattr(commands, "SHELL", "/bin/sh")
        command.notice(Notice("WASHER", notices.RUNNING, AT))
        await lines.wait("on_running for WASHER: exit status 0")
        await command.aclose()

    run(main())
    assert lines.texts[0] == (
        f"on_finished for WASHER: cannot run {tmp_path}/no-such-shell: No such file or directory"
    )
    assert lines.records[0].levelno == logging.ERROR
    assert out.read_text() == "ran\n"


def test_a_flood_of_output_is_read_to_the_end_and_kept_bounded(tmp_path: Path) -> None:
    # 20 MB through the pipe: the command must never stall on a full pipe.
    config = load(tmp_path, "on_finished = head -c 20000000 /dev/zero | tr '\\0' x; echo")
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await lines.wait("on_finished for WASHER:")
        await command.aclose()

    run(main())
    [text] = lines.texts
    assert text == (
        "on_finished for WASHER: exit status 0: "
        + "x" * commands.LINE_LIMIT
        + "... (20,000,001 bytes)"
    )


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    ("shell", "ends"),
    [
        ("", "killed by SIGTERM"),
        ("trap '' TERM; ", "killed by SIGKILL"),  # ignores TERM, and so does its child
    ],
    ids=["term", "kill"],
)
def test_a_command_that_overruns_its_timeout_is_stopped_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: str, ends: str
) -> None:
    child = tmp_path / "child"
    gate = fifo(tmp_path / "gate")  # never opened: the command waits for ever
    config = load(
        tmp_path,
        f"command_timeout = 0.2\non_finished = {shell}echo started; "
        f"read _ < {gate} & echo $! > {child}; wait",
    )
    monkeypatch.setattr(commands, "KILL_AFTER", 0.2)
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await lines.wait("on_finished for WASHER:")
        await command.aclose()

    run(main())
    assert lines.texts == [f"on_finished for WASHER: timed out after 0.2 s, {ends}: started"]
    assert not alive(int(child.read_text()))


def test_a_slow_command_while_events_keep_coming(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    gate, ready = fifo(tmp_path / "gate"), fifo(tmp_path / "ready")
    config = load(
        tmp_path,
        f"on_running = echo > {ready}; read _ < {gate}\n"
        f"on_finished = echo $WHITEGOODSD_AT >> {out}",
    )
    command, lines = output(config)
    events = commands.QUEUE_LIMIT + 10

    async def main() -> None:
        command.notice(Notice("WASHER", notices.RUNNING, AT))
        await started(ready)
        for n in range(events):
            command.notice(Notice("WASHER", notices.FINISHED, AT + n, CYCLE))
        # notice() returns at once every time; past the limit an event is refused.
        assert lines.texts == [
            f"on_finished for WASHER not run: {commands.QUEUE_LIMIT} commands already wait "
            "for this appliance."
        ] * (events - commands.QUEUE_LIMIT)
        await release(gate)
        await lines.wait("on_finished for WASHER: exit status 0", commands.QUEUE_LIMIT)
        await command.aclose()

    run(main())
    ran = out.read_text().splitlines()
    assert ran == [messages.iso_time(AT + n) for n in range(commands.QUEUE_LIMIT)]
    assert sum(t.startswith("on_running for WASHER: exit status 0") for t in lines.texts) == 1


def test_stopping_drops_queued_commands_and_stops_a_running_one(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    gate, ready = fifo(tmp_path / "gate"), fifo(tmp_path / "ready")
    config = load(
        tmp_path,
        f"on_running = echo > {ready}; read _ < {gate}\non_finished = echo ran >> {out}",
    )
    command, lines = output(config)

    async def main() -> None:
        command.notice(Notice("WASHER", notices.RUNNING, AT))
        command.notice(Notice("WASHER", notices.FINISHED, AT, CYCLE))
        await started(ready)
        await command.aclose()
        command.notice(Notice("WASHER", notices.RUNNING, AT))  # after close: nothing

    run(main())
    assert not out.exists()
    assert lines.texts == [
        "1 command(s) for WASHER not run: whitegoodsd is stopping.",
        "on_running for WASHER: stopped with whitegoodsd, killed by SIGTERM, no output.",
    ]


def test_the_monitor_runs_commands_and_never_waits_for_them(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    """A whole dryer cycle on a real plug while the RUNNING command is still busy."""
    need_program("sh", "it is /bin/sh")
    out = tmp_path / "finished"
    gate, ready = fifo(tmp_path / "gate"), fifo(tmp_path / "ready")
    clock = FakeClock()
    profile = ProfilePower(DRYER, clock, start=clock.now + 600)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    config = load_config(
        tmp_path,
        syslog,
        {"DRYER": plug.port},
        main=f"on_running = echo > {ready}; read _ < {gate}\n"
        f'on_finished = printf "%s" "$WHITEGOODSD_MESSAGE" > {out}',
    )
    monitor = Monitor(config, wallclock=clock)

    async def main() -> None:
        while not monitor.statuses()[0].running:
            await replay(monitor, clock, clock.now + 1)
        await started(ready)
        await replay(monitor, clock, profile.end + 3600)
        assert monitor.statuses()[0].cycles == 1  # every pass ran, the command still busy
        assert not out.exists()
        await release(gate)
        await asyncio.to_thread(syslog.wait_for, lambda m: m.text.startswith("on_finished"))
        await monitor.close()

    run(main())
    texts = syslog.texts()
    [finished] = [t for t in texts if t.startswith("DRYER is FINISHED.")]
    assert out.read_text() == finished
    assert [t for t in texts if t.startswith("on_")] == [
        "on_running for DRYER: exit status 0, no output.",
        "on_finished for DRYER: exit status 0, no output.",
    ]


def test_commands_default_from_the_main_section_and_keep_semicolons(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "on_finished = echo one; echo two # not a comment\ncommand_timeout = 2.5",
        WASHER="",
        DRYER="on_finished = \non_running = logger -t x ran; true",
        DISHWASHER="on_finished = echo mine",
    )
    washer, dryer, dishwasher = (a.notifications for a in config.appliances)
    assert washer.command(notices.FINISHED) == "echo one; echo two # not a comment"
    assert washer.command(notices.RUNNING) is None
    assert dryer.command(notices.FINISHED) is None  # empty: off for this one
    assert dryer.command(notices.RUNNING) == "logger -t x ran; true"
    assert dishwasher.command(notices.FINISHED) == "echo mine"
    assert config.command_timeout == 2.5
    summary = check.summary(config).splitlines()
    told = [line.strip() for line in summary if line.startswith("    ")]
    assert told == ["on_finished", "on_running", "on_finished"]  # WASHER, DRYER, DISHWASHER
    with pytest.raises(configuration.ConfigError, match="command_timeout: must be a positive"):
        load(tmp_path, "command_timeout = 0")


def test_on_unreachable_gets_the_reason_from_the_monitor(
    tmp_path: Path, syslog: SyslogListener
) -> None:
    need_program("sh", "it is /bin/sh")
    out = tmp_path / "reason"
    with socket.socket() as closed:  # a port that nothing listens on: refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = load_config(
        tmp_path,
        syslog,
        {"WASHER": port},
        main=f'on_unreachable = printf "%s|%s" "$WHITEGOODSD_MESSAGE" "$WHITEGOODSD_REASON" > {out}'
        "\nunreachable_after = 1",
    )
    monitor = Monitor(config, wallclock=FakeClock())

    async def main() -> None:
        await monitor.poll_pass()
        await asyncio.to_thread(syslog.wait_for, lambda m: m.text.startswith("on_unreachable"))
        await monitor.close()

    run(main())
    assert out.read_text() == "WASHER is UNREACHABLE.|connection refused"


def test_a_reload_keeps_the_output_and_takes_the_new_commands(tmp_path: Path) -> None:
    from whitegoodsd import outputs

    first = load(tmp_path, "on_finished = echo one")
    [command] = outputs.build(first)
    assert isinstance(command, CommandOutput)
    second = load(tmp_path, "on_finished = echo two\ncommand_timeout = 5")
    assert outputs.rebuild([command], second) == [command]
    assert command.timeout == 5
    assert outputs.rebuild([command], load(tmp_path, "")) == []
