"""Home Assistant MQTT discovery configs for each appliance (pure: names in, messages out).

With ``homeassistant_discovery = yes`` the MQTT output publishes, retained,
under ``homeassistant/`` (HA's default discovery prefix) one device per
appliance with four entities:

==================================  ==========================================
``binary_sensor/NODE/running``      device_class ``running``, ``PREFIX/NAME/running``
``sensor/NODE/power``               device_class ``power``, state_class
                                    ``measurement``, W, ``PREFIX/NAME/power``
``sensor/NODE/energy``              device_class ``energy``, state_class
                                    ``total_increasing``, Wh, ``PREFIX/NAME/energy``
                                    (the plug's own counter, where it has one)
``event/NODE/cycle``                event_types RUNNING, FINISHED, UNREACHABLE,
                                    REACHABLE, from ``PREFIX/NAME/event``
==================================  ==========================================

``NODE`` is ``whitegoodsd_`` + a slug of the name + a hash of the prefix and
the upper-cased name: the unique ids (``NODE_running`` ...) stay the same
across restarts and any reordering of the file, differ between two daemons
with different prefixes, and change only when the appliance is renamed.
All entities are available while ``PREFIX/status`` says ``online``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from whitegoodsd import __version__
from whitegoodsd.protocols.mqtt_formats import topic_level

DISCOVERY_PREFIX = "homeassistant"
EVENT_TYPES = ("RUNNING", "FINISHED", "UNREACHABLE", "REACHABLE")


def node_id(prefix: str, name: str) -> str:
    """The appliance's id in discovery topics and unique ids: ``[a-zA-Z0-9_-]`` only."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:32] or "appliance"
    digest = hashlib.sha256(f"{prefix}\0{name.upper()}".encode()).hexdigest()[:8]
    return f"whitegoodsd_{slug}_{digest}"


def base_topic(prefix: str, name: str) -> str:
    return f"{prefix}/{topic_level(name)}"


def configs(prefix: str, name: str, driver: str) -> dict[str, bytes]:
    """Discovery topic -> retained config payload, for one appliance."""
    node = node_id(prefix, name)
    base = base_topic(prefix, name)
    device = {
        "identifiers": [node],
        "name": name,
        "manufacturer": "whitegoodsd",
        "model": f"{driver} plug",
        "sw_version": __version__,
    }
    common: dict[str, Any] = {
        "availability_topic": f"{prefix}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": "whitegoodsd", "sw_version": __version__},
    }
    entities: dict[str, tuple[str, dict[str, Any]]] = {
        "running": ("binary_sensor", {
            "name": "Running", "state_topic": f"{base}/running", "payload_on": "ON",
            "payload_off": "OFF", "device_class": "running",
        }),
        "power": ("sensor", {
            "name": "Power", "state_topic": f"{base}/power", "device_class": "power",
            "state_class": "measurement", "unit_of_measurement": "W",
        }),
        "energy": ("sensor", {
            "name": "Energy", "state_topic": f"{base}/energy", "device_class": "energy",
            "state_class": "total_increasing", "unit_of_measurement": "Wh",
        }),
        "cycle": ("event", {
            "name": "Cycle", "state_topic": f"{base}/event", "event_types": list(EVENT_TYPES),
        }),
    }  # fmt: skip
    out = {}
    for what, (component, entity) in entities.items():
        payload = {**entity, "unique_id": f"{node}_{what}", "object_id": f"{node}_{what}"}
        payload.update(common)
        topic = f"{DISCOVERY_PREFIX}/{component}/{node}/{what}/config"
        out[topic] = json.dumps(payload, separators=(",", ":")).encode()
    return out
