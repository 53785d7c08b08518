"""The ``photofind`` command: the window with no sub-command (or ``gui``),
the command line otherwise. Kept apart so the CLI never imports Qt."""

from __future__ import annotations

import importlib
import sys


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] == "gui":
        gui = importlib.import_module("photofind.gui.app")
        return int(gui.main(args[1:]))
    from photofind.cli import main as cli_main

    return int(cli_main() or 0)
