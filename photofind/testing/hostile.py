"""A decoder hook that misbehaves on purpose, for isolation and quarantine tests.

Run photofind with ``PHOTOFIND_DECODE_HOOK=photofind.testing.hostile:evil_decoder``
and a file whose name contains one of these words makes its decoder:
``segfault`` crash, ``hang`` sleep forever, ``balloon`` allocate without
bound, ``killapp`` kill the whole photofind process (the main one).
"""

from __future__ import annotations

import os
import signal
import time

HOOK = "photofind.testing.hostile:evil_decoder"
SLOW_HOOK = "photofind.testing.hostile:slow_decoder"
LOG_ENV = "PHOTOFIND_HOOK_LOG"


def slow_decoder(path: str) -> None:
    """Take 250 ms a file and log each decode (to count work redone after kills)."""
    time.sleep(0.25)
    log = os.environ.get(LOG_ENV)
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"x\n")
        finally:
            os.close(fd)


def evil_decoder(path: str) -> None:
    name = os.path.basename(path)
    if "segfault" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in name:
        time.sleep(3600)
    if "balloon" in name:
        import numpy as np

        hoard = []
        while True:  # address space, not touched pages: fast until the cap says no
            hoard.append(np.empty(1 << 30, np.uint8))
    if "killapp" in name:
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(1)
