"""``python -m whitegoodsd`` and the ``whitegoodsd`` command.

SIGHUP, SIGTERM and SIGINT are held (blocked) before anything else is
imported: a ``systemctl reload`` or a stop in the first moments after a start
must not kill the daemon with the default action.  A command that is not the
daemon lets them go at once (``cli.main``); the daemon lets them go once its
loop handles them, which then acts on any that came meanwhile.
"""

import signal
import sys

HELD = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


def main() -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    from whitegoodsd.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
