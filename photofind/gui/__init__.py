"""The desktop app (PySide6). Talks to ``photofind.core`` through the workers
in ``workers.py``, the only module that creates threads."""
