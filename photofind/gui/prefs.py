"""The window's saved preferences: QSettings keys and the helpers that read them."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from photofind.core.watcher import WatchConfig

TILE = "tile"  # thumbnail size in px
CUTOFF = "cutoff"  # relevance cut-off slider position (0: automatic)
MODEL = "model"
PENDING_MODEL = "pending_model"  # a model switch the last run did not finish
DEVICE = "device"
RUNTIME = "runtime"  # auto | onnx | torch
THREADS = "threads"
RESCAN_MINUTES = "rescan_minutes"
FORCE_POLLING = "force_polling"
SIDEBAR = "sidebar"  # "true" when the sidebar is shown


def stored_int(store: QSettings, key: str, default: int) -> int:
    """An integer setting (QSettings hands back strings from an INI file)."""
    try:
        return int(str(store.value(key, default) or default))
    except ValueError:
        return default


def stored_bool(store: QSettings, key: str, default: bool) -> bool:
    return str(store.value(key, "true" if default else "false")).lower() == "true"


def store_bool(store: QSettings, key: str, value: bool) -> None:
    store.setValue(key, "true" if value else "false")


def watch_config(store: QSettings) -> WatchConfig:
    """The watched-folder options the Settings dialog keeps."""
    return WatchConfig(reconcile_every=60.0 * stored_int(store, RESCAN_MINUTES, 30),
                       force_polling=stored_bool(store, FORCE_POLLING, False))
