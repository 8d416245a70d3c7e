"""One run per output folder: an ``fcntl`` lock on ``<outdir>/.scmib.lock``.

Two ``scmib run --outdir X`` at once would run every job twice on the same
files. The second one says who holds the folder and exits 2 (or, with
``--wait``, waits). The lock is the kernel's: it ends with the process that
held it, also when that process is killed, so a stale lock file never blocks.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from scmib.errors import ScmibError

LOCK_FILE = ".scmib.lock"


class OutdirLock:
    """Context manager holding the exclusive lock of an output folder for a run."""

    def __init__(self, outdir: Path, wait: bool = False) -> None:
        self.path = outdir / LOCK_FILE
        self.wait = wait
        self.handle = None

    def __enter__(self) -> OutdirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another scmib run"
            if not self.wait:
                handle.close()
                raise ScmibError(
                    f"{self.path.parent} is in use by {holder}; wait for it to finish, "
                    "use another --outdir, or pass --wait"
                ) from None
            print(f"scmib: waiting for {holder} to finish with {self.path.parent}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        handle.write(f"scmib run {json.dumps(holder)}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.handle is not None:
            self.handle.close()  # closing releases the lock
            self.handle = None
