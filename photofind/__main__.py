"""Entry point for ``python -m photofind``."""

from photofind.cli import main

raise SystemExit(main())
