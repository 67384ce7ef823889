"""How readings arrive other than by polling: shared connections of pushed families.

A pushed family (``Driver.PUSHED``) names in ``Driver.HUB`` a module here
whose ``open_hub(config, deliver, log)`` returns the one connection all its
appliances share.  The hub hands every reading to ``deliver(name, outcome,
at)`` as it arrives, with ``at`` from ``time.monotonic()``.
"""
