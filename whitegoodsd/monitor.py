"""The poll loop: one asyncio loop, every plug polled concurrently each pass.

A pass polls every appliance at once, each poll bounded by the driver's
timeout and at most ``max_in_flight`` polls open at a time, then feeds the
results to the detectors in config order and logs what they say.  Passes run
on a fixed-rate schedule: the next one starts ``monitor_interval`` seconds
after this one started if anything is active (a failed poll, a sample at or
above a running threshold, or an appliance running), else
``monitor_interval_nothing_running`` seconds after.  The first pass runs at
once.

Signals: SIGTERM and SIGINT stop the loop (an unfinished pass is cancelled);
SIGHUP reloads the INI file, keeping each remaining appliance's state.

With ``state_file`` set, each appliance's state and open cycle are read from
it at start and written back after every pass that changed them, so a
restart in the middle of a cycle neither repeats RUNNING nor loses the
cycle's statistics.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from whitegoodsd import config as configuration
from whitegoodsd import cycle, drivers, engine, outputs, state
from whitegoodsd.config import ApplianceConfig, Config, ConfigError
from whitegoodsd.conversation import Conversation
from whitegoodsd.detector import Detector, Event, EventKind, Sample, State
from whitegoodsd.drivers.base import Driver, PlugError, Reading, describe
from whitegoodsd.engine import max_in_flight
from whitegoodsd.status import ApplianceStatus, CycleRecord

EventListener = Callable[[str, Event], None]


def make_driver(appliance: ApplianceConfig, timeout: float) -> Driver:
    plug = appliance.plug
    return drivers.get(plug.driver)(plug.host, plug.port, timeout, dict(plug.options))


def _failing(error: PlugError) -> Conversation[Reading]:
    raise error
    yield  # a generator that fails at its first step


def conversation(driver: Driver) -> Conversation[Reading]:
    """The driver's poll, or one that fails with its bug as the reason."""
    try:
        return driver.poll()
    except Exception as exc:  # noqa: BLE001 - a driver's bug must not stop the loop
        failure = PlugError(describe(exc, driver.timeout))
        failure.__cause__ = exc
        return _failing(failure)


async def poll_all(
    plugs: Sequence[Driver],
    timeout: float,  # noqa: ASYNC109 - per poll, not for the whole call
    in_flight: int | None = None,
) -> list[Reading | PlugError]:
    """One poll of every plug, at most ``in_flight`` at a time: the daemon's
    pass and ``--once`` alike."""
    return await engine.run([conversation(d) for d in plugs], timeout, in_flight)


@dataclass
class Appliance:
    """An appliance as the monitor tracks it between passes."""

    config: ApplianceConfig
    driver: Driver
    detector: Detector
    failures: int = 0  # failed polls in a row
    unreachable: bool = False
    reading: Reading | None = None
    error: str | None = None
    last_poll: float | None = None
    cycles: int = 0
    last_cycle: CycleRecord | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def status(self) -> ApplianceStatus:
        return ApplianceStatus(
            name=self.name,
            driver=self.config.plug.driver,
            plug=self.driver.address,
            up=self.error is None and self.reading is not None,
            reading=self.reading,
            error=self.error,
            running=self.detector.state is State.RUNNING,
            cycles=self.cycles,
            last_poll=self.last_poll,
            last_cycle=self.last_cycle,
        )


@dataclass
class PassResult:
    """What one pass found."""

    active: bool  # decides the next interval
    failed: list[str] = field(default_factory=list)  # names whose poll failed
    events: list[tuple[str, Event]] = field(default_factory=list)


class Monitor:
    """Polls every appliance of a Config until stopped."""

    def __init__(
        self,
        config: Config,
        *,
        logger: logging.Logger | None = None,
        on_reload: Callable[[Config], None] | None = None,
        wallclock: Callable[[], float] = time.time,
        in_flight: int | None = None,
    ) -> None:
        self.log = logger or logging.getLogger("whitegoodsd")
        self.config = config
        self.on_reload = on_reload
        self.wallclock = wallclock
        self.listeners: list[EventListener] = []
        self.appliances: list[Appliance] = [
            Appliance(a, make_driver(a, config.timeout), Detector(a.settings))
            for a in config.appliances
        ]
        self._saved_state: str | None = None  # the state file's text as last written
        self._state_failing = False
        if config.state_file:
            self._restore(config.state_file)
        self.outputs: list[outputs.Output] = outputs.build(config)
        self._in_flight = in_flight or max_in_flight()
        self._stopping = False
        self._reload_requested = False
        self._wake: asyncio.Event | None = None
        self._pass: asyncio.Task[PassResult] | None = None
        self._retired: list[Driver] = []  # replaced by a reload, to be closed
        self.passes = 0

    # -- control, safe to call from signal handlers on the loop ---------------

    def stop(self) -> None:
        self._stopping = True
        if self._pass is not None:
            self._pass.cancel()
        if self._wake is not None:
            self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        if self._wake is not None:
            self._wake.set()

    # -- the loop -------------------------------------------------------------

    async def run(self, *, install_signals: bool = True) -> None:
        """Poll until stop() or a stop signal."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if install_signals:
            loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal)
            loop.add_signal_handler(signal.SIGINT, self._on_stop_signal)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self.log.info("Starting.")
        try:
            while not self._stopping:
                started = loop.time()
                self._pass = asyncio.create_task(self.poll_pass())
                try:
                    result = await self._pass
                except asyncio.CancelledError:
                    if self._stopping:
                        break
                    raise
                finally:
                    self._pass = None
                await self._sleep_until_next(started, result.active)
        finally:
            if install_signals:
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(signum)
            await self.close()

    def _on_stop_signal(self) -> None:
        self.log.info("Exiting on signal.")
        self.stop()

    def interval(self, active: bool) -> float:
        if active:
            return self.config.monitor_interval
        return self.config.monitor_interval_nothing_running

    async def _sleep_until_next(self, started: float, active: bool) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        interval = self.interval(active)
        self.log.debug("Sleeping %s seconds before next iteration.", f"{interval:,g}")
        while not self._stopping:
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
                await self._close_retired()
                active = active or any(a.detector.state is State.RUNNING for a in self.appliances)
                interval = self.interval(active)
            remaining = started + interval - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    async def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for driver in retired:
            await driver.close()

    async def close(self) -> None:
        await self._close_retired()
        for appliance in self.appliances:
            await appliance.driver.close()
        for output in self.outputs:
            output.close()

    # -- one pass -------------------------------------------------------------

    async def _poll_all(self) -> list[Reading | PlugError]:
        """Every appliance's poll, at most ``_in_flight`` at a time (engine.py)."""
        return await poll_all(
            [a.driver for a in self.appliances], self.config.timeout, self._in_flight
        )

    async def poll_pass(self) -> PassResult:
        """Poll every appliance once and act on the results."""
        for appliance in self.appliances:
            self.log.debug(
                "%s polling. Current state: %s.", appliance.name, appliance.detector.state.value
            )
        results = await self._poll_all()
        now = self.wallclock()
        result = PassResult(active=False)
        for appliance, outcome in zip(self.appliances, results, strict=True):
            appliance.last_poll = now
            for note in appliance.driver.notes():
                self.log.debug("%s: %s.", appliance.name, note)
            if isinstance(outcome, PlugError):
                self._failed(appliance, outcome)
                result.failed.append(appliance.name)
                result.active = True
                continue
            event = self._sampled(appliance, outcome, now)
            if appliance.reading is not None and appliance.detector.is_high(outcome.power_mw):
                result.active = True
            if event is not None:
                result.events.append((appliance.name, event))
        if any(a.detector.state is State.RUNNING for a in self.appliances):
            result.active = True
        self.passes += 1
        self._save_state()
        self._publish()
        return result

    def _failed(self, appliance: Appliance, error: PlugError) -> None:
        appliance.detector.missed()
        appliance.reading = None
        appliance.error = str(error)
        appliance.failures += 1
        if appliance.unreachable:
            self.log.debug("Error getting current usage for %s: %s", appliance.name, error)
            return
        self.log.error(
            "Error getting current usage for %s: %s",
            appliance.name,
            error,
            exc_info=error if self.config.log_debug else None,
        )
        if appliance.failures >= self.config.unreachable_after:
            appliance.unreachable = True
            self.log.warning("%s is UNREACHABLE.", appliance.name)

    def _sampled(self, appliance: Appliance, reading: Reading, now: float) -> Event | None:
        appliance.reading = reading
        appliance.error = None
        appliance.failures = 0
        if appliance.unreachable:
            appliance.unreachable = False
            self.log.info("%s is REACHABLE.", appliance.name)
        self.log.debug(
            "%s current usage is %s mW; threshold is %s mW",
            appliance.name,
            f"{reading.power_mw:,}",
            f"{appliance.config.settings.threshold_running_mw:,}",
        )
        if not appliance.detector.is_plausible(reading.power_mw):
            # A one-off spike (HS110s report tens of MW now and then): no sample.
            appliance.detector.missed()
            appliance.reading = None
            appliance.error = f"implausible reading of {reading.power_mw:,} mW discarded"
            self.log.warning(
                "Discarded a reading of %s mW from %s: above max_plausible_mw (%s mW).",
                f"{reading.power_mw:,}",
                appliance.name,
                f"{appliance.config.settings.max_plausible_mw:,}",
            )
            return None
        event = appliance.detector.sample(Sample(reading.power_mw, now, reading.total_wh))
        if event is None:
            return None
        if event.kind is EventKind.RUNNING:
            self.log.info("%s is RUNNING.", appliance.name)
        else:
            appliance.cycles += 1
            appliance.last_cycle = event.cycle or appliance.last_cycle
            figures = f" {cycle.summary(event.cycle)}" if event.cycle else ""
            self.log.info("%s is FINISHED.%s", appliance.name, figures)
        for listener in self.listeners:
            listener(appliance.name, event)
        return event

    # -- the state file -------------------------------------------------------

    def _restore(self, path: str) -> None:
        """Take each appliance's state and open cycle from the state file."""
        loaded = state.load(path, {a.name.upper(): a.driver.address for a in self.appliances})
        for warning in loaded.warnings:
            self.log.warning("%s", warning)
        for appliance in self.appliances:
            saved = loaded.appliances.get(appliance.name.upper())
            if saved is None:
                continue
            appliance.cycles = saved.cycles
            appliance.last_cycle = saved.last_cycle
            was = State.RUNNING if saved.running else State.STOPPED
            appliance.detector = Detector(appliance.config.settings, was, saved.cycle)
            if saved.running:
                self.log.info("Resuming %s: running, as the state file says.", appliance.name)

    def _save_state(self) -> None:
        """Write the state file if anything in it changed; never raises."""
        path = self.config.state_file
        if not path:
            return
        text = state.dumps(
            {
                a.name: state.ApplianceState(
                    plug=a.driver.address,
                    running=a.detector.state is State.RUNNING,
                    cycle=a.detector.cycle,
                    cycles=a.cycles,
                    last_cycle=a.last_cycle,
                )
                for a in self.appliances
            }
        )
        if text == self._saved_state:
            return
        try:
            state.save(path, text)
        except OSError as exc:
            if not self._state_failing:
                self.log.error("Cannot write the state file %s: %s", path, exc.strerror or exc)
            self._state_failing = True
            return
        if self._state_failing:
            self.log.info("State file %s written again.", path)
        self._state_failing = False
        self._saved_state = text

    def statuses(self) -> list[ApplianceStatus]:
        return [a.status() for a in self.appliances]

    def _publish(self) -> None:
        statuses: Sequence[ApplianceStatus] | None = None
        for output in self.outputs:
            statuses = statuses or self.statuses()
            try:
                output.write(statuses)
            except Exception as exc:  # noqa: BLE001 - an output never stops the loop
                self.log.error("Output %s failed: %s", type(output).__name__, exc)

    # -- reload ---------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the INI file; on any problem keep the running config."""
        try:
            new = configuration.load(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                self.log.error("%s", problem)
            self.log.error(
                "Reload of %s failed; keeping the previous configuration.", self.config.path
            )
            return False
        for warning in new.warnings:
            self.log.warning("%s", warning)
        old = {a.name.upper(): a for a in self.appliances}
        appliances = []
        for spec in new.appliances:
            previous = old.pop(spec.name.upper(), None)
            if previous is None:
                appliances.append(
                    Appliance(spec, make_driver(spec, new.timeout), Detector(spec.settings))
                )
                continue
            previous.detector = previous.detector.reconfigured(spec.settings)
            if spec.plug != previous.config.plug or new.timeout != self.config.timeout:
                self._retired.append(previous.driver)
                previous.driver = make_driver(spec, new.timeout)
            previous.config = spec
            appliances.append(previous)
        self._retired.extend(a.driver for a in old.values())
        self.appliances = appliances
        for output in self.outputs:
            output.close()
        if new.state_file != self.config.state_file:
            self._saved_state = None
        self.config = new
        if self.on_reload is not None:
            self.on_reload(new)
        self.outputs = outputs.build(new)
        self.log.info("Reloaded %s: %d appliance(s).", new.path, len(new.appliances))
        return True
