"""The frozen app's one entry point: the window with no command, the CLI with one.

``freeze_support`` must run first: the decode pool starts its workers with ``spawn``,
and a frozen child process re-enters here with multiprocessing's own arguments.
"""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from photofind.cli import main

    raise SystemExit(main())
