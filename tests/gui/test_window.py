"""The desktop window, driven as a person would: typing, dropping, pasting,
the context menu, the Folders dialog; with the toy CLIP and the real core."""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog

from photofind.core.catalog import Catalog
from photofind.gui.data import Hit
from photofind.gui.mainwindow import MainWindow
from photofind.gui.models import ResultsModel
from photofind.testing.samples import make_sample_library, save_picture
from photofind.testing.shapes import draw_picture
from tests.conftest import IndexedLibrary
from tests.gui.conftest import OpenWindow, photofind_threads


def wait_for_results(qtbot, window: MainWindow, after: int | None = None,  # type: ignore[no-untyped-def]
                     timeout: int = 60_000) -> list[Hit]:
    """The rows of the next answer (to a query newer than serial ``after``)."""
    qtbot.waitUntil(lambda: window.serial > (after if after is not None else -1)
                    and window.shown_serial == window.serial, timeout=timeout)
    return [window.model.hit(r) for r in range(window.model.rowCount())]


def classes(indexed: IndexedLibrary, hits: list[Hit]) -> list[tuple[str, str]]:
    truth = {str(p.path): (p.colour, p.shape) for p in indexed.photos}
    return [truth[h.info.path] for h in hits]


def ready(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    wait_for_results(qtbot, window)


def test_typing_a_query_shows_matching_photos_first(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                    library_copy: Path,
                                                    indexed: IndexedLibrary) -> None:
    window = open_window(library_copy)
    ready(qtbot, window)
    assert window.search.hasFocus() or not window.isActiveWindow()
    before = window.serial
    qtbot.keyClicks(window.search, "a red circle")  # debounced: no Enter needed
    hits = wait_for_results(qtbot, window, before)
    assert classes(indexed, hits[:5]) == [("red", "circle")] * 5
    assert "matches" in window.count_label.text()
    first = window.model.index(0)
    tip = first.data(Qt.ItemDataRole.ToolTipRole)  # hover: name, folder, date, size, score
    path = Path(hits[0].info.path)
    assert path.name in tip and str(path.parent) in tip and "match 0." in tip
    assert hits[0].info.date[:10] in tip and ("KB" in tip or "MB" in tip)
    window.grid.selectionModel().select(
        first, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    window.grid.selectionModel().select(window.model.index(1),
                                        QItemSelectionModel.SelectionFlag.Select)
    window.copy_paths()  # Ctrl+C
    assert QGuiApplication.clipboard().text().splitlines() == [hits[0].info.path,
                                                               hits[1].info.path]
    dragged = window.model.mimeData([first])  # dragging a tile out carries its file
    assert [u.toLocalFile() for u in dragged.urls()] == [hits[0].info.path]
    window.search.clear()
    qtbot.keyClick(window.search, Qt.Key.Key_Return)  # empty: the library, newest first
    hits = wait_for_results(qtbot, window)
    assert len(hits) == len(indexed.photos)
    dates = [h.info.date for h in hits]
    assert dates == sorted(dates, reverse=True)


def drop(window: MainWindow, mime: QMimeData) -> None:
    event = QDropEvent(QPoint(200, 200).toPointF(), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_dropping_a_file_or_image_data_finds_look_alikes(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                         library_copy: Path, tmp_path: Path,
                                                         indexed: IndexedLibrary) -> None:
    window = open_window(library_copy)
    ready(qtbot, window)
    outside = tmp_path / "dropped" / "my blue square.png"
    save_picture(draw_picture("blue", "square", (320, 240), random.Random(9)), outside, "PNG")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(outside))])
    drop(window, mime)
    hits = wait_for_results(qtbot, window)
    assert classes(indexed, hits[:3]) == [("blue", "square")] * 3
    assert window.chip.isVisible() and "my blue square.png" in window.chip.text()
    # its picture on the chip is decoded in a worker process, then shown
    qtbot.waitUntil(lambda: not window.chip.icon().isNull(), timeout=30_000)

    temp = set(Path(tempfile.gettempdir()).glob("photofind-query-*"))
    data = QMimeData()  # as a web browser drags an image: pixels, no file
    image = draw_picture("green", "star", (300, 300), random.Random(4))
    data.setImageData(QImage(image.tobytes(), 300, 300, 900, QImage.Format.Format_RGB888))
    drop(window, data)
    hits = wait_for_results(qtbot, window)
    assert classes(indexed, hits[:3]) == [("green", "star")] * 3
    assert set(Path(tempfile.gettempdir()).glob("photofind-query-*")) == temp
    qtbot.keyClicks(window.search, "a green star")  # words combine with the pasted picture
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window)
    assert window.chip.isVisible() and classes(indexed, hits[:3]) == [("green", "star")] * 3
    before = Catalog(library_copy / "catalog.sqlite3")
    assert before.embedding_count(window.settings.model) == len(indexed.photos)  # nothing added
    before.close()


def test_find_similar_from_the_context_menu(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                            library_copy: Path, indexed: IndexedLibrary) -> None:
    window = open_window(library_copy)
    ready(qtbot, window)
    qtbot.keyClicks(window.search, "a yellow triangle")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    hits = wait_for_results(qtbot, window)
    target = hits[0]
    window.search.clear()
    [similar] = [a for a in window.context_actions(target) if a.text() == "Find similar"]
    similar.trigger()
    hits = wait_for_results(qtbot, window)
    assert target.info.id not in [h.info.id for h in hits]
    assert classes(indexed, hits[:1]) == [("yellow", "triangle")]
    cli = indexed.cli.json("similar", target.info.path, "-n", "5")  # the same ranking
    assert [h.info.path for h in hits[:5]] == [r["path"] for r in cli]
    window.chip.click()  # removing the chip goes back to the whole library
    hits = wait_for_results(qtbot, window)
    assert len(hits) == len(indexed.photos) and not window.chip.isVisible()


def test_results_model_passes_qtmodeltester(qtmodeltester, library_copy: Path) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(library_copy / "catalog.sqlite3")
    infos = catalog.newest_first()
    catalog.close()
    model = ResultsModel()
    model.set_hits([Hit(info, 0.3 - i / 1000) for i, info in enumerate(infos)] * 5)
    qtmodeltester.check(model)
    model.set_view(0.05, by_date=True)
    qtmodeltester.check(model)
    assert all(model.hit(r).score >= 0.25 for r in range(model.total()))  # type: ignore[operator]


def sample_folder(tmp_path: Path, per_class: int) -> Path:
    folder = tmp_path / "Pictures"
    make_sample_library(folder, per_class=per_class, large=0)
    return folder


def test_gui_never_stalls_while_300_photos_index(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    folder = sample_folder(tmp_path, per_class=15)  # 300 photos
    window = open_window(tmp_path / "library")
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    seen: list[int] = []  # the progress bar as a 10 ms timer on the GUI thread saw it

    def tick() -> None:
        if window.indexing:
            seen.append(window.progress_bar.value())
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    window.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.model.total() == 300 and not window.indexing,
                    timeout=300_000)
    timer.stop()
    # The event loop kept turning while the photos were indexed: the timer saw the bar
    # move through many values, not jump at the end (the longest gap, in ms, is a figure
    # of benchmarks/bench_window_indexing.py).
    assert len(seen) > 100 and len(set(seen)) >= 5, sorted(set(seen))


def test_folders_dialog_indexes_and_new_photos_appear_by_themselves(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, tmp_path: Path, monkeypatch) -> None:
    folder = sample_folder(tmp_path, per_class=1)
    window = open_window(tmp_path / "library")
    assert window.stack.currentIndex() == 0 or not window.status_info  # the empty state
    qtbot.waitUntil(lambda: window.status_info is not None, timeout=30_000)
    assert window.stack.currentIndex() == 0
    dialog = window.open_folders()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1
                    and dialog.table.item(0, 2).text() == "20", timeout=120_000)
    assert dialog.table.item(0, 0).text() == str(folder)
    qtbot.waitUntil(lambda: window.model.total() == 20, timeout=30_000)
    qtbot.keyClicks(window.search, "a purple star")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    wait_for_results(qtbot, window)
    new = folder / "new" / "just-copied.jpg"
    save_picture(draw_picture("purple", "star", (400, 300), random.Random(77)), new, "JPEG")
    qtbot.waitUntil(lambda: window.model.total() == 21, timeout=60_000)
    top = [window.model.hit(r).info.path for r in range(2)]  # with the other purple star
    assert str(new) in top


def test_quitting_while_indexing_is_quick_and_the_next_start_resumes(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, tmp_path: Path, toy_model: str) -> None:
    folder = sample_folder(tmp_path, per_class=10)  # 200 photos
    window = open_window(tmp_path / "library")
    qtbot.waitUntil(lambda: window.queries.model_loaded, timeout=60_000)
    window.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.indexing and window.progress_bar.value() > 0, timeout=60_000)
    window.close()  # returns once the run has stopped (how long: bench_window_indexing.py)
    assert not photofind_threads()
    catalog = Catalog(tmp_path / "library" / "catalog.sqlite3")
    done = catalog.embedding_count(toy_model)
    catalog.close()
    assert 0 < done < 200  # stopped part-way, with what was done committed
    again = open_window(tmp_path / "library")
    qtbot.waitUntil(lambda: again.model.total() == 200 and not again.indexing, timeout=300_000)
    catalog = Catalog(tmp_path / "library" / "catalog.sqlite3")
    assert catalog.embedding_count(toy_model) == 200
    catalog.close()


def test_switching_models_reembeds_while_the_old_one_answers(  # type: ignore[no-untyped-def]
        qtbot, open_window: OpenWindow, library_copy: Path, tmp_path: Path, toy_model: str,
        indexed: IndexedLibrary) -> None:
    other = tmp_path / "other-model"  # the same weights under another name: a new model
    shutil.copytree(toy_model.split(":", 1)[1], other)
    new_spec = f"local-dir:{other}"
    window = open_window(library_copy)
    ready(qtbot, window)
    dialog = window.open_settings()
    dialog.model.setText(new_spec)
    dialog._save()
    assert window.store.value("pending_model") == new_spec
    assert window.queries.settings.model == toy_model  # the old model keeps answering
    qtbot.keyClicks(window.search, "a green circle")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert classes(indexed, wait_for_results(qtbot, window)[:3]) == [("green", "circle")] * 3
    qtbot.waitUntil(lambda: window.queries.settings.model == new_spec, timeout=120_000)
    catalog = Catalog(library_copy / "catalog.sqlite3")
    assert catalog.embedding_count(new_spec) == len(indexed.photos)
    assert catalog.embedding_count(toy_model) == len(indexed.photos)  # kept, not replaced
    catalog.close()
    assert window.store.value("model") == new_spec and not window.store.value("pending_model")
    before = window.serial
    window.run_query()
    assert classes(indexed, wait_for_results(qtbot, window, before)[:3]) == \
        [("green", "circle")] * 3


def test_settings_persist_and_reach_the_watcher(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    from PySide6.QtCore import QSettings

    window = open_window(tmp_path / "library")
    dialog = window.open_settings()
    dialog.rescan.setValue(45)
    dialog.polling.setChecked(True)
    dialog.device.setCurrentText("cpu")
    dialog._save()
    window.size_slider.setValue(200)
    path = window.store.fileName()
    window.close()
    store = QSettings(path, QSettings.Format.IniFormat)
    assert int(store.value("tile")) == 200 and store.value("device") == "cpu"
    again = MainWindow(window.settings, store)
    qtbot.addWidget(again)
    assert again.engine.watch is not None
    assert again.engine.watch.reconcile_every == 45 * 60 and again.engine.watch.force_polling
    assert again.size_slider.value() == 200
    again.shutdown()


def test_a_first_download_shows_its_progress(qtbot, open_window: OpenWindow,  # type: ignore[no-untyped-def]
                                             tmp_path: Path) -> None:
    """The weights growing in the Hugging Face cache show as a bar and megabytes
    (the download itself cannot run here: no network)."""
    from photofind.core.model.sources import Download

    window = open_window(tmp_path / "library")
    # (the toy model; once the window was told, or its model_ready would end the bar)
    qtbot.waitUntil(lambda: window.search.isEnabled(), timeout=60_000)
    blobs = tmp_path / "hub" / "blobs"
    blobs.mkdir(parents=True)
    window.queries.model_downloading.emit(Download("laion/x", str(blobs), 600_000_000))
    qtbot.waitUntil(lambda: "0 of 600 MB" in window.progress_label.text(), timeout=5_000)
    (blobs / "abc123.incomplete").write_bytes(b"\0" * 3_000_000)
    qtbot.waitUntil(lambda: "3 of 600 MB" in window.progress_label.text(), timeout=5_000)
    assert window.progress_bar.isVisible() and window.progress_bar.value() == 3
    assert "Downloading" in window.search.placeholderText()
    # the download is done and the model loaded
    window.queries.model_ready.emit("ONNX Runtime on CPU")
    assert not window.progress_bar.isVisible() and window.download is None
