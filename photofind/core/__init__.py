"""The engine: no Qt here, ever. Usable from the CLI, the GUI and tests."""
