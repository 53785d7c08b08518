"""Entry point for ``python -m photofind`` (the window, or a CLI command)."""

from photofind.cli import main

raise SystemExit(main())
