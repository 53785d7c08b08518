"""A decoder hook that misbehaves on purpose, for isolation and quarantine tests.

Run photofind with ``PHOTOFIND_DECODE_HOOK=photofind.testing.hostile:evil_decoder``
and a file whose name contains one of these words makes its decoder:
``segfault`` crash, ``hang`` sleep forever, ``balloon`` allocate without
bound, ``killapp`` kill the whole photofind process (the main one).
``gated_decoder`` paces decodes for the crash test.
"""

from __future__ import annotations

import os
import signal
import time

HOOK = "photofind.testing.hostile:evil_decoder"
GATE_HOOK = "photofind.testing.hostile:gated_decoder"
LOG_ENV = "PHOTOFIND_HOOK_LOG"  # a file that gets one line per decode let through
GATE_ENV = "PHOTOFIND_HOOK_GATE"  # a file holding how many decodes may pass, in all


def gated_decoder(path: str) -> None:
    """Let a decode start only while fewer than the gate's number are logged.

    The crash test hands out decodes this way, so that each run it kills has
    done exactly the work it was given, however fast the machine is. A decoder
    whose photofind died while it waited goes on, unlogged, as a real one would.
    """
    import fcntl
    import multiprocessing

    spawner = multiprocessing.parent_process()  # (it may have died before this call)
    parent = spawner.pid if spawner is not None else os.getppid()
    while os.getppid() == parent:
        with open(os.environ[LOG_ENV], "a+b") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.seek(0)
            done = log.read().count(b"\n")
            try:
                with open(os.environ[GATE_ENV], "rb") as gate:
                    allowed = int(gate.read() or 0)
            except (OSError, ValueError):
                allowed = 0
            if done < allowed:
                log.write(b"x\n")
                return
        time.sleep(0.02)


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
