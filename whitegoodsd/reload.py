"""What a reload changes: which appliances stay, come, go, or get a new plug.

Pure: two configurations in, a plan out.  Appliances are matched by name,
case-insensitively, as sections are.  A kept appliance keeps its detector
state (reconfigured to the new settings) and its open cycle; one whose plug
changed (address, family, family options) or whose timeout changed gets a
new driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from whitegoodsd.config import Config


@dataclass(frozen=True)
class Plan:
    kept: tuple[str, ...]  # upper-cased names in both, in the new order
    added: tuple[str, ...]
    retired: tuple[str, ...]
    replugged: tuple[str, ...]  # kept, with a new driver


def plan(old: Config, new: Config) -> Plan:
    before = {a.name.upper(): a for a in old.appliances}
    after = [a.name.upper() for a in new.appliances]
    kept = tuple(n for n in after if n in before)
    replugged = tuple(
        a.name.upper()
        for a in new.appliances
        if a.name.upper() in before
        and (a.plug != before[a.name.upper()].plug or new.timeout != old.timeout)
    )
    return Plan(
        kept=kept,
        added=tuple(n for n in after if n not in before),
        retired=tuple(n for n in before if n not in after),
        replugged=replugged,
    )
