"""Notification URLs: ``notify = URL[, URL...]``, sent through Apprise.

Theory of operation
-------------------
An event in an appliance's ``notify_events`` becomes a message: for
FINISHED ``notify_template`` filled in with the cycle's figures, for the
others the event's syslog line.  Each message is delivered by a task of its
own, so nothing here ever holds up the poll loop:

1. **Quiet hours.**  While the local time is inside ``quiet_hours`` the
   message waits until they end; it is held, never dropped.
2. **Sending.**  Apprise is imported on the first message (a daemon without
   ``notify`` never loads it) and called in a thread of its own, once per
   URL, at most ``SENDING_LIMIT`` at a time.
3. **Failure.**  The URLs that failed are tried again after ``FIRST_RETRY``
   seconds, then twice as long each time up to ``LONGEST_RETRY``, for at
   most ``RETRY_FOR`` seconds after the first try; then the message is
   logged as lost, naming the appliance and the event.  Quiet hours hold a
   retry too.
4. **Reminders.**  ``remind_every`` seconds after a FINISHED message went
   out, it goes out again (``Reminder: ...``), ``remind_times`` times at
   most; the appliance's next RUNNING ends the reminders.

At most ``PENDING_LIMIT`` messages wait per appliance; past that the oldest
is dropped, logged as lost.  Stopping (``aclose``) gives sends under way up
to ``SHUTDOWN_GRACE`` seconds and logs every message still waiting as lost.
A reload (``reconfigure``) keeps the messages and reminders under way.

Time comes from a ``Clock`` (wall-clock ``now()`` and ``sleep_until()``),
so that quiet hours, reminders and back-off can be tested on a clock the
test moves.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from whitegoodsd import messages, notices
from whitegoodsd.config import ApplianceConfig, Config, Notifications
from whitegoodsd.notices import Notice
from whitegoodsd.outputs import lines
from whitegoodsd.status import ApplianceStatus

FIRST_RETRY = 10.0  # seconds after a failed send
LONGEST_RETRY = 600.0
RETRY_FOR = 3600.0  # seconds after the first try, then the message is lost
PENDING_LIMIT = 16  # messages waiting per appliance
SENDING_LIMIT = 4  # sends at once
SHUTDOWN_GRACE = 0.5  # seconds for sends under way when the daemon stops
TITLE = "whitegoodsd"

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float: ...  # wall-clock seconds since the epoch

    async def sleep_until(self, when: float) -> None: ...


class SystemClock:
    """The wall clock; a sleep wakes at least every minute to notice it was set."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        while (left := when - time.time()) > 0:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(min(left, 60.0))


def quiet_until(now: float, window: tuple[int, int] | None) -> float | None:
    """When the quiet hours that hold ``now`` end, or None outside them.

    ``window`` is (from, until) in minutes after local midnight; from after
    until spans midnight (23:00-07:00).
    """
    if window is None:
        return None
    start, end = window
    local = datetime.datetime.fromtimestamp(now)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.date() if minute < end else local.date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, datetime.time(end // 60, end % 60)).timestamp()


def redacted(url: str) -> str:
    """``scheme://host`` of a URL: enough to tell which, nothing secret."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}"


# -- Apprise, in threads -------------------------------------------------------


class _Reasons(logging.Handler):
    """The last warning Apprise logged in each thread: why a send failed.

    For an Apprise without ``log_callback`` (before 2.0), which logs in the
    thread that called it.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.last[record.thread or 0] = record.getMessage()


_reasons = _Reasons()
_apprise: Any = None
_log_callback = False  # Apprise.notify() takes log_callback


def _load_apprise() -> Any:
    global _apprise, _log_callback
    if _apprise is None:
        import apprise

        _log_callback = "log_callback" in inspect.signature(apprise.Apprise.notify).parameters
        if not _log_callback:
            logging.getLogger("apprise").addHandler(_reasons)
        _apprise = apprise
    return _apprise


def send(url: str, body: str, title: str) -> str | None:
    """Send one message to one URL (blocking); None if it went, else why not."""
    apprise = _load_apprise()
    me = threading.get_ident()
    _reasons.last.pop(me, None)
    said: list[str] = []

    def collect(entry: Any, plugin: Any) -> None:
        if str(getattr(entry, "level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
            said.append(str(entry.message))

    try:
        sender = apprise.Apprise()
        if not sender.add(url):
            return "Apprise cannot use this URL"
        extra = {"log_callback": collect} if _log_callback else {}
        if sender.notify(body=body, title=title, **extra):
            return None
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is one failed send
        return f"{type(exc).__name__}: {exc}"
    reason = said[-1] if said else _reasons.last.pop(me, "Apprise reported a failure")
    return " ".join(reason.split())[:200]


async def in_thread(function: Callable[[], T]) -> T:
    """``function()`` in a daemon thread: one stuck in a send never delays exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(action: Callable[[], None]) -> None:
        if not future.done():
            action()

    def run() -> None:
        outcome: Callable[[], None]
        try:
            outcome = functools.partial(future.set_result, function())
        except BaseException as exc:  # noqa: BLE001 - handed to the loop
            outcome = functools.partial(future.set_exception, exc)
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:
            pass  # the loop is gone: nobody waits any more

    threading.Thread(target=run, name="whitegoodsd-notify", daemon=True).start()
    return await future


# -- messages --------------------------------------------------------------------


@dataclass
class Message:
    """One message of one appliance on its way to its URLs."""

    notice: Notice
    body: str
    urls: list[str]  # those it has not reached yet
    reminder: int = 0  # 0: the event's own message; n: the nth reminder
    sending: bool = False  # in Apprise's hands right now
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def what(self) -> str:
        name = f"notify for {self.notice.appliance} {self.notice.kind}"
        return f"{name} (reminder {self.reminder})" if self.reminder else name


class NotifyOutput:
    """Sends each appliance's events to its notification URLs."""

    def __init__(
        self,
        config: Config,
        logger: logging.Logger | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.log = logger or logging.getLogger("whitegoodsd")
        self.clock: Clock = clock or SystemClock()
        self._pending: dict[str, list[Message]] = {}  # by upper-case name
        self._reminders: dict[str, asyncio.Task[None]] = {}
        self._sending: asyncio.Semaphore | None = None
        self._closing = False
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Take a reloaded config; messages and reminders under way go on."""
        self._appliances: dict[str, ApplianceConfig] = {
            a.name.upper(): a for a in config.appliances
        }

    def write(self, statuses: Iterable[ApplianceStatus]) -> None:
        pass

    def notice(self, notice: Notice) -> None:
        key = notice.appliance.upper()
        appliance = self._appliances.get(key)
        if appliance is None or self._closing:
            return
        if notice.kind == notices.RUNNING:
            self._stop_reminders(key)
        settings = appliance.notifications
        if not settings.notify or notice.kind not in settings.notify_events:
            return
        line = lines.line(notice, appliance.settings)[1]
        if notice.kind == notices.FINISHED:
            body = messages.render(settings.notify_template, notice, line)
        else:
            body = f"{line} {notice.reason}" if notice.reason else line
        self._start(key, Message(notice, body, list(settings.notify)))

    # -- delivery ----------------------------------------------------------------

    def _start(self, key: str, message: Message) -> None:
        pending = self._pending.setdefault(key, [])
        if len(pending) >= PENDING_LIMIT:
            oldest = pending[0]
            self.log.warning("%s lost: %d messages wait already.", oldest.what, len(pending))
            self._forget(key, oldest)
            if oldest.task is not None:
                oldest.task.cancel()
        pending.append(message)
        message.task = asyncio.get_running_loop().create_task(self._deliver(key, message))

    def _forget(self, key: str, message: Message) -> None:
        pending = self._pending.get(key, [])
        if message in pending:
            pending.remove(message)

    async def _deliver(self, key: str, message: Message) -> None:
        try:
            sent = await self._attempts(message)
        finally:
            self._forget(key, message)
        settings = self._settings(key)
        if (
            sent
            and message.notice.kind == notices.FINISHED
            and settings is not None
            and settings.remind_every > 0
            and message.reminder < settings.remind_times
            and not self._closing
        ):
            self._stop_reminders(key)
            self._reminders[key] = asyncio.get_running_loop().create_task(
                self._remind(key, message, self.clock.now() + settings.remind_every)
            )

    async def _attempts(self, message: Message) -> bool:
        """Send until every URL took it or the retries run out; True if any took it."""
        first: float | None = None
        delay = FIRST_RETRY
        sent = False
        while True:
            end = quiet_until(self.clock.now(), self._quiet(message))
            if end is not None:
                self.log.info(
                    "%s: held for quiet hours until %s.",
                    message.what, time.strftime("%H:%M", time.localtime(end)),
                )  # fmt: skip
                await self.clock.sleep_until(end)
                continue
            first = self.clock.now() if first is None else first
            failures = await self._send_all(message)
            sent = sent or len(failures) < len(message.urls)
            message.urls = [url for url, _ in failures]
            if not failures:
                self.log.info("%s: sent.", message.what)
                return True
            reasons = "; ".join(f"{redacted(url)}: {why}" for url, why in failures)
            if self.clock.now() + delay > first + RETRY_FOR:
                self.log.error(
                    "%s lost: failed for %s s: %s",
                    message.what, f"{self.clock.now() - first:,.0f}", reasons,
                )  # fmt: skip
                return sent
            self.log.warning("%s failed, trying again in %s s: %s", message.what, f"{delay:g}",
                             reasons)  # fmt: skip
            await self.clock.sleep_until(self.clock.now() + delay)
            delay = min(delay * 2, LONGEST_RETRY)

    async def _send_all(self, message: Message) -> list[tuple[str, str]]:
        """Send to every URL still to reach; the (url, reason) of each failure."""
        if self._sending is None:
            self._sending = asyncio.Semaphore(SENDING_LIMIT)
        title, body = TITLE, message.body
        if message.reminder:
            body = f"Reminder: {body}"

        async def one(url: str) -> str | None:
            assert self._sending is not None
            async with self._sending:
                return await in_thread(lambda: send(url, body, title))

        message.sending = True
        try:
            results = await asyncio.gather(*(one(url) for url in message.urls))
        finally:
            message.sending = False
        return [(url, why) for url, why in zip(message.urls, results, strict=True) if why]

    async def _remind(self, key: str, message: Message, when: float) -> None:
        await self.clock.sleep_until(when)
        settings = self._settings(key)
        if settings is None or not settings.notify or not settings.remind_every or self._closing:
            return
        reminder = Message(
            message.notice, message.body, list(settings.notify), message.reminder + 1
        )
        del self._reminders[key]  # this task goes on as the reminder's delivery
        self._start(key, reminder)

    def _settings(self, key: str) -> Notifications | None:
        appliance = self._appliances.get(key)
        return appliance.notifications if appliance is not None else None

    def _quiet(self, message: Message) -> tuple[int, int] | None:
        settings = self._settings(message.notice.appliance.upper())
        return settings.quiet_hours if settings is not None else None

    def _stop_reminders(self, key: str) -> None:
        task = self._reminders.pop(key, None)
        if task is not None:
            task.cancel()
        for message in list(self._pending.get(key, [])):
            if message.reminder and message.task is not None:
                message.task.cancel()
                self._forget(key, message)

    # -- stopping ----------------------------------------------------------------

    def close(self) -> None:
        """Take no more events; what is under way goes on."""
        self._closing = True

    async def aclose(self) -> None:
        """Stop: sends under way get a bounded grace; waiting messages are lost."""
        self._closing = True
        for task in self._reminders.values():
            task.cancel()
        self._reminders.clear()
        waiting = [m for ms in self._pending.values() for m in ms if m.task is not None]
        sending = {m.task for m in waiting if m.sending and m.task is not None}
        if sending:
            await asyncio.wait(sending, timeout=SHUTDOWN_GRACE)
        left = [m for m in waiting if m.task is not None and not m.task.done()]
        for message in left:
            self.log.warning("%s lost: whitegoodsd is stopping.", message.what)
            assert message.task is not None
            message.task.cancel()
        await asyncio.gather(*(m.task for m in left if m.task), return_exceptions=True)
