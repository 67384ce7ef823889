"""Replacing a file so that no reader and no crash ever sees half of it.

The one atomic writer: a temporary file in the same directory (so the rename
stays on one filesystem), written and synced, given its mode, renamed over
the target, and the directory synced so that the rename itself survives a
power cut.  The temporary is removed if anything fails on the way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def write_atomically(
    path: str, data: bytes, *, prefix: str = ".tmp-", suffix: str = ".tmp", mode: int | None = None
) -> None:
    """Replace the file at ``path`` by ``data``; OSError on failure.

    ``mode`` sets the new file's permissions (mkstemp makes it 0600).
    """
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
