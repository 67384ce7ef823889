"""whitegoodsd: says when a washer, dryer or dishwasher starts and finishes.

It polls power-metering smart plugs and writes ``NAME is RUNNING.`` and
``NAME is FINISHED.`` to syslog, where rsyslog rules can run scripts.
"""

__version__ = "1.0.0"
