"""The ``photofind`` command's entry point, kept apart from the CLI.

Decode workers start with ``spawn``, which runs the parent's main script again
in each new process. pip's ``photofind`` script imports its entry point at the
top, so it names this module: the CLI (and with it the catalog and numpy, 0.3 s
of CPU) is imported when the command runs, not once more in every worker.
"""

from __future__ import annotations


def main() -> int:
    from photofind.cli import main as cli_main

    return cli_main()
