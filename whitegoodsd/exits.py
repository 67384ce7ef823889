"""Exit statuses of every whitegoodsd command, in one place (see whitegoodsd(8))."""

OK = 0
FAILURE = 1  # a runtime failure: a plug did not answer (--once), already running
USAGE = 2  # a configuration or usage error
INTERRUPTED = 130  # stopped by Ctrl-C (the demo)
