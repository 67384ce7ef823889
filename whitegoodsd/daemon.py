"""Daemon mode: fork into the background around the monitor, with a pidfile.

python-daemon's ``DaemonContext`` forks, calls setsid, sets the umask, changes
to ``/`` and takes the pidfile (lockfile's ``TimeoutPIDLockFile``: the lock
is the file's existence, created with O_EXCL).  Its behaviour shapes this
module:

- It takes the pidfile lock *after* forking, where a failure is invisible
  (the parent has already exited 0).  So the pidfile is checked here first,
  on the terminal: a live whitegoodsd refuses the start with ``already
  running (pid N)`` and exit 1; a stale file is removed and said so.
- It closes every descriptor it does not know of: logging is opened after
  the fork, never before.
- Its ``signal_map`` replaces the defaults rather than adding to them.  It
  holds SIGHUP (ignored until the monitor's own handler is in place: a
  default SIGHUP would kill the daemon) and SIGTERM (exit, releasing the
  pidfile, until the monitor takes over and stops gracefully).
- ``detach_process`` is passed explicitly: its guess does not fork under
  PID 1 and fails when stdin is closed.
- Paths are made absolute before the ``chdir("/")``.

python-daemon and lockfile are imported only here, inside the functions that
need them, so the foreground daemon without ``-p`` never loads them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from whitegoodsd import exits
from whitegoodsd.config import Config

DEFAULT_PIDFILE = "/run/whitegoodsd.pid"

EXIT_FAILURE = exits.FAILURE


class AlreadyRunning(Exception):
    """The pidfile names a live whitegoodsd."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"already running (pid {pid})")


class PidfileError(Exception):
    """The pidfile cannot be read, removed or written."""


def pidfile_path(option: str | None, config: Config) -> str:
    """``-p``, else the INI ``pidfile``, else the default; always absolute."""
    return os.path.abspath(option or config.pidfile or DEFAULT_PIDFILE)


def read_pid(path: str) -> int | None:
    """The pid recorded in ``path``: None if there is no file, 0 if it holds no pid."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(64).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PidfileError(f"cannot read pidfile {path}: {exc.strerror}") from None
    return int(text) if text.isdigit() and 0 < int(text) < 2**22 + 1 else 0


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live whitegoodsd other than this process.

    A pid that a dead daemon left behind may since have been given to another
    program, so the command line is checked where /proc shows it.
    """
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, but another user's
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # gone since, unless there is no /proc
    except OSError:
        return True  # hidden from us (hidepid): trust kill()
    try:
        exe: str | None = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = None  # another user's process, or a kernel thread
    return is_whitegoodsd(cmdline.split(b"\0")[:-1] if cmdline else [], exe)


def is_whitegoodsd(argv: list[bytes], exe: str | None) -> bool:
    """Whether a process with this command line and executable is a whitegoodsd.

    Its program (argv[0] or the executable) is named whitegoodsd, or it is a
    Python interpreter running the whitegoodsd script (a console script runs
    as ``python /usr/bin/whitegoodsd``) or module (``python -m whitegoodsd``).
    A process that merely has the word among its arguments is not.
    """
    if exe is not None and os.path.basename(exe) == "whitegoodsd":
        return True
    if not argv:
        return False
    program = os.path.basename(argv[0])
    if program == b"whitegoodsd":
        return True
    interpreter = re.fullmatch(rb"python[0-9.]*", program) or (
        exe is not None and re.fullmatch(r"python[0-9.]*", os.path.basename(exe))
    )
    if not interpreter:
        return False
    args = iter(argv[1:])
    for arg in args:
        if arg == b"--":
            break
        if not arg.startswith(b"-") or arg == b"-":
            return _is_our_script(arg)
        flags = arg[1:]
        for i, flag in enumerate(flags.decode("ascii", "replace")):
            if flag in "mcWX":  # these take a value, here or as the next argument
                value = flags[i + 1 :] or next(args, b"")
                if flag == "m":
                    return value in (b"whitegoodsd", b"whitegoodsd.__main__")
                if flag == "c":
                    return False
                break
    return _is_our_script(next(args, b""))


def _is_our_script(path: bytes) -> bool:
    return os.path.basename(path) == b"whitegoodsd" or path.endswith(b"whitegoodsd/__main__.py")


def claim_pidfile(path: str) -> int | None:
    """Make ``path`` free for a new daemon, before anything forks.

    Returns None if it was free, or the stale pid whose file was removed (0 if
    the file held no pid).  Raises AlreadyRunning or PidfileError.
    """
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise PidfileError(f"cannot write pidfile {path}: no directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PidfileError(f"cannot write pidfile {path}: {directory} is not writable")
    pid = read_pid(path)
    if pid is None:
        return None
    if is_running(pid):
        raise AlreadyRunning(pid)
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PidfileError(f"cannot remove stale pidfile {path}: {exc.strerror}") from None
    return pid


def stale_message(path: str, pid: int) -> str:
    held = f"pid {pid} is not running" if pid else "it held no pid"
    return f"Removed stale pidfile {path} ({held})."


def _claim_or_report(path: str, err: TextIO) -> tuple[bool, int | None]:
    """claim_pidfile, printing a refusal on ``err``; (ok, stale pid)."""
    try:
        stale = claim_pidfile(path)
    except (AlreadyRunning, PidfileError) as exc:
        print(f"whitegoodsd: {exc}", file=err)
        return False, None
    if stale is not None:
        print(f"whitegoodsd: {stale_message(path, stale)}", file=err)
    return True, stale


def _log(config: Config, verbose: bool) -> logging.Logger:
    from whitegoodsd.outputs import syslog

    return syslog.setup(
        config.syslog_address,
        config.syslog_facility,
        debug=config.log_debug or verbose,
        stderr=False,
    )


def signal_map() -> dict[int, Any]:
    """What DaemonContext installs; the monitor's loop handlers replace it later."""
    return {
        signal.SIGTERM: "terminate",  # raises SystemExit: the pidfile is released
        signal.SIGHUP: None,  # ignored until the monitor handles it
        signal.SIGTSTP: None,
        signal.SIGTTIN: None,
        signal.SIGTTOU: None,
    }


def start(
    config: Config,
    pidfile_option: str | None,
    serve: Callable[[], int],
    *,
    verbose: bool = False,
    err: TextIO = sys.stderr,
) -> int:
    """Check the pidfile, fork, take the pidfile, log to syslog, run ``serve``.

    Returns in the daemon (the parent exits inside DaemonContext.open()), or
    in the caller's process when refusing to start.
    """
    import daemon
    import daemon.pidfile
    import lockfile

    path = pidfile_path(pidfile_option, config)
    ok, stale = _claim_or_report(path, err)
    if not ok:
        return EXIT_FAILURE
    context = daemon.DaemonContext(
        detach_process=True,
        umask=0o022,
        working_directory="/",
        pidfile=daemon.pidfile.TimeoutPIDLockFile(path, acquire_timeout=0),
        signal_map=signal_map(),
    )
    try:
        context.open()
    except lockfile.Error as exc:
        # After the fork: stderr is /dev/null now, only syslog can tell.
        _log(config, verbose).error("Cannot take pidfile %s: %s; exiting.", path, exc)
        return EXIT_FAILURE
    except daemon.daemon.DaemonError as exc:
        print(f"whitegoodsd: cannot become a daemon: {exc}", file=err)
        return EXIT_FAILURE
    log = _log(config, verbose)
    try:
        if stale is not None:
            log.warning("%s", stale_message(path, stale))
        return serve()
    except Exception as exc:  # the last place anyone can hear of it
        log.critical("Stopped by an unexpected error: %s", exc, exc_info=exc)
        return EXIT_FAILURE
    finally:
        try:
            context.close()
        except lockfile.Error as exc:
            log.warning("Pidfile %s: %s", path, exc)


@contextlib.contextmanager
def foreground_pidfile(path: str, err: TextIO = sys.stderr) -> Iterator[bool]:
    """Hold ``path`` as a pidfile in the foreground; yields False if refused.

    SIGTERM raises SystemExit until the monitor installs its own handler, so a
    stop during start-up still removes the file.
    """
    from daemon.pidfile import TimeoutPIDLockFile
    from lockfile import Error as LockError

    path = os.path.abspath(path)
    ok, _ = _claim_or_report(path, err)
    if not ok:
        yield False
        return
    lock = TimeoutPIDLockFile(path, acquire_timeout=0)
    try:
        lock.acquire()
    except LockError as exc:
        print(f"whitegoodsd: cannot take pidfile {path}: {exc}", file=err)
        yield False
        return

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(f"Terminating on signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield True
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        try:
            lock.release()
        except LockError as exc:
            print(f"whitegoodsd: pidfile {path}: {exc}", file=err)
