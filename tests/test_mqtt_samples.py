"""sample/mqtt: the events script turns the MQTT output's events into the hook's lines."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable

from whitegoodsd.notices import Notice
from whitegoodsd.outputs.mqtt import event_payload
from whitegoodsd.status import CycleRecord

from conftest import ROOT, need_program
from kit import WAIT
from mosquitto import Mosquitto

SCRIPT = ROOT / "sample" / "mqtt" / "whitegoodsd-mqtt-events"


def test_shellcheck_is_clean() -> None:
    shellcheck = need_program("shellcheck", "apt-get install shellcheck")
    subprocess.run([shellcheck, str(SCRIPT)], check=True)


def test_events_become_the_lines_the_daemon_logs(mosquitto: Callable[..., Mosquitto]) -> None:
    need_program("mosquitto_sub", "apt-get install mosquitto-clients")
    publish = need_program("mosquitto_pub", "apt-get install mosquitto-clients")
    broker = mosquitto()
    env = {**os.environ, "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port),
           "EVENTS_HOOK": "-"}  # fmt: skip
    script = subprocess.Popen(
        [str(SCRIPT)], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert script.stdout is not None
    try:
        events = [
            Notice("WASHER", "RUNNING", 1_700_000_000.0),
            Notice("WASHER", "FINISHED", 1_700_005_525.0,
                   cycle=CycleRecord(1_700_000_000.0, 5525.0, 850.0, 2_150_000)),
            Notice("TUMBLE DRYER", "UNREACHABLE", 1_700_000_000.0),
        ]  # fmt: skip
        expected = ["WASHER is RUNNING.", "WASHER is FINISHED.", "TUMBLE DRYER is UNREACHABLE."]
        for index, notice in enumerate(events):
            # The first retained: it reaches the script whenever it subscribes.
            retain = ["-r"] if index == 0 else []
            subprocess.run(
                [publish, "-p", str(broker.port), "-t", f"whitegoodsd/{notice.appliance}/event",
                 "-q", "1", "-m", event_payload(notice).decode(), *retain],
                check=True,
            )  # fmt: skip
            assert script.stdout.readline().rstrip("\n") == expected[index]
    finally:
        os.killpg(script.pid, signal.SIGTERM)  # the shell, mosquitto_sub and sed
        script.wait(WAIT)
        script.stdout.close()
