"""`photofind` alone opens the window; where there is no display it says so."""

from __future__ import annotations

from tests.conftest import Cli


def test_without_a_display_photofind_says_so_in_one_sentence(cli: Cli) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        cli.env.pop(var, None)
    for args in ((), ("gui",), ("--library", str(cli.library))):
        proc = cli.run(*args, check=False, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.strip().count("\n") == 0
        assert "no display" in proc.stderr and "photofind --help" in proc.stderr
    assert not cli.library.exists()  # nothing was created on the way
    assert "open the desktop window" in cli.run("--help").stdout
