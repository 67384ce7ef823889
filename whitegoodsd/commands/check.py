"""What ``whitegoodsd --check-config`` prints for a file that loads: a summary
of what the daemon will do with it, one line per appliance."""

from __future__ import annotations

from whitegoodsd import notices
from whitegoodsd.config import FACILITIES, Config
from whitegoodsd.drivers.base import format_address


def summary(config: Config) -> str:
    """A human-readable account of a loaded config, for --check-config."""

    lines = [
        f"{config.path}: OK, {len(config.appliances)} appliance(s)",
        f"  poll every {config.monitor_interval:g} s while anything runs, "
        f"every {config.monitor_interval_nothing_running:g} s when all is idle; "
        f"timeout {config.timeout:g} s; UNREACHABLE after {config.unreachable_after} "
        "failed polls",
    ]
    address = config.syslog_address
    where = address if isinstance(address, str) else f"{address[0]}:{address[1]} (UDP)"
    facility = next(k for k, v in FACILITIES.items() if v == config.syslog_facility)
    lines.append(
        f"  syslog to {where}, facility {facility}" + (", debug on" if config.log_debug else "")
    )
    if config.textfile:
        lines.append(f"  textfile {config.textfile}")
    if config.state_file:
        lines.append(f"  state file {config.state_file}")
    if config.mqtt_broker:
        login = f" as {config.mqtt_username}" if config.mqtt_username else ""
        tls = ", TLS" if config.mqtt_tls else ""
        publish = f", publishing under {config.mqtt_prefix}/" if config.mqtt_publish else ""
        discovery = ", Home Assistant discovery" if config.homeassistant_discovery else ""
        broker = format_address(*config.mqtt_broker)
        lines.append(f"  MQTT broker {broker}{login}{tls}{publish}{discovery}")
    if config.record_dir:
        lines.append(f"  readings recorded in {config.record_dir}")
    for a in config.appliances:
        s = a.settings
        family = a.plug.family
        port = a.plug.port if a.plug.port is not None else family.default_port(dict(a.plug.options))
        where = format_address(a.plug.host, port)
        hysteresis = ""
        if (s.threshold_finished_mw, s.minsamples_finished) != (
            s.threshold_running_mw,
            s.minsamples,
        ):
            hysteresis = (
                f", FINISHED after {s.minsamples_finished} below {s.threshold_finished_mw:,} mW"
            )
        delays = "".join(
            f", {what} {seconds:g} s" for what, seconds in
            (("start_delay", s.start_delay), ("finish_delay", s.finish_delay),
             ("max_dip", s.max_dip), ("max_burst", s.max_burst)) if seconds
        )  # fmt: skip
        if s.energy_counter:
            delays += ", energy counter"
        secret = {o.name for o in family.OPTIONS if o.secret}
        options = "".join(
            f", {k} {'(set)' if k in secret else v}" for k, v in a.plug.options if v is not None
        )
        lines.append(
            f"  {a.name}: {a.plug.driver} plug at {where}"
            f"{f', kind {a.kind}' if a.kind else ''}, RUNNING after "
            f"{s.minsamples} sample(s) at or above {s.threshold_running_mw:,} mW{hysteresis}"
            f"{delays}{options}"
        )
        told = [f"on_{k.lower()}" for k in notices.EVENT_KINDS if a.notifications.command(k)]
        if a.notifications.notify and a.notifications.notify_events:
            told.append(
                f"notify {len(a.notifications.notify)} URL(s) of "
                + " ".join(a.notifications.notify_events)
            )
        if told:
            lines.append(f"    {', '.join(told)}")
    return "\n".join(lines)
