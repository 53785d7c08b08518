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
