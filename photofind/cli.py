"""The command line: argparse over the core (no Qt here). With no command,
or ``gui``, it opens the desktop window (imported only then, by name).

Exit codes: 0 success (unreadable files are reported, not fatal), 1 a
runtime error shown as one sentence on stderr, 2 a usage error. Plain-text
output is one line per item: control characters in a file name (a newline)
are shown escaped; ``--json`` output keeps names exact. A reader that closes
the pipe early (``photofind doctor | head -3``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photofind import __version__
from photofind.core.catalog import PhotoInfo, Root
from photofind.core.config import DEFAULT_MODEL, DEVICES, RUNTIMES, Settings
from photofind.core.errors import PhotofindError, UsageError
from photofind.core.library import Library

if TYPE_CHECKING:
    from photofind.core.duplicates import Found
    from photofind.core.filters import Filter

log = logging.getLogger("photofind")


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--library", metavar="DIR", default=default,
                        help="library folder (env PHOTOFIND_LIBRARY; default: your user data"
                             " folder)")
    parser.add_argument("--model", metavar="SPEC", default=default,
                        help=f"CLIP model: name/tag, hf-hub:org/repo or local-dir:/path"
                             f" (env PHOTOFIND_MODEL; default {DEFAULT_MODEL})")
    parser.add_argument("--device", choices=DEVICES, default=default,
                        help="where the model runs (env PHOTOFIND_DEVICE; default auto: CUDA"
                             " when available, else CPU)")
    parser.add_argument("--runtime", choices=RUNTIMES, default=default,
                        help="what runs the model (env PHOTOFIND_RUNTIME; default auto: torch"
                             " on CUDA or MPS when installed, else ONNX Runtime on the CPU)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="log what happens (on stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photofind",
        description="Search your own photo folders by meaning, on your own machine.",
        epilog="Queries: words and image files, joined with + and -, weights as 2:word."
               ' Example: photofind search "beach" + ./me.jpg - "crowd"')
    parser.add_argument("--version", action="version", version=f"photofind {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="index and search a drawn sample library with a small model, and"
                             " say whether this installation works")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help_text, description=help_text)

    add("gui", "open the desktop window (also what `photofind` alone does)")
    p = add("add", "add folders to the library (index them with `photofind index`)")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p = add("remove", "remove folders from the library (your files are not touched)")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p = add("index", "index every folder, or add and index the ones given")
    p.add_argument("folders", nargs="*", metavar="FOLDER")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    _reading_option(p)
    p = add("watch", "keep the library up to date as folders change, until Ctrl+C")
    p.add_argument("--json", action="store_true", help="one JSON object per batch of changes")
    _reading_option(p)
    p.add_argument("--reconcile-minutes", type=_positive_int, default=30, metavar="N",
                   help="rescan everything every N minutes, for changes the system did"
                        " not report (default 30)")
    p = add("search", "find photos by words and/or images; with filters and no words,"
            " list the photos they keep, newest first")
    p.add_argument("query", nargs="*", metavar="TERM")
    _query_options(p)
    _filter_options(p)
    p = add("similar", "find photos that look like an image (in the library or not)")
    p.add_argument("image", metavar="IMAGE")
    _query_options(p)
    _filter_options(p)
    p = add("status", "show the library: photos, folders, model, device")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = add("doctor", "check the library; --repair rebuilds the index and thumbnails")
    p.add_argument("--full", action="store_true", help="a full integrity check (slower)")
    p.add_argument("--repair", action="store_true",
                   help="rebuild what is derived (never touches your photos)")
    p = add("failed", "list the files that could not be read, with the reason")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = add("retry", "give the files that could not be read another chance, and index")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    _model_parser(add("model", "model tools: `photofind model export SPEC --out DIR`"))
    p = add("text", "print the text read in photos of the library")
    p.add_argument("photos", nargs="+", metavar="PHOTO")
    p.add_argument("--json", action="store_true", help="lines, confidence and boxes as JSON")
    _zero_shot_commands(add)
    _duplicates_command(add)
    _exchange_commands(add)
    return parser


def _reading_option(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--no-ocr", dest="ocr", action="store_false", default=None,
                       help="stop reading the text in this library's photos (kept until"
                            " --ocr; text already read stays searchable)")
    group.add_argument("--ocr", dest="ocr", action="store_true", default=None,
                       help="read the text in this library's photos again (the default)")


def _model_parser(p: argparse.ArgumentParser) -> None:
    tools = p.add_subparsers(dest="model_command", metavar="TOOL", required=True)
    export = tools.add_parser("export", help="export an open_clip model to an ONNX folder"
                              " (needs torch), checked against open_clip",
                              description="Export an open_clip model (name/tag, hf-hub: or"
                              " local-dir:) to an ONNX folder in the layout Immich publishes;"
                              " the folder is written only if its vectors match open_clip's.")
    export.add_argument("spec", metavar="SPEC")
    export.add_argument("--out", required=True, metavar="DIR", help="the new folder")


def _zero_shot_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """classify, albums, album, locate: CLIP's zero-shot labels and boxes."""
    p = add("classify", "label images with the smart-album vocabulary or your own labels")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--labels", metavar="A,B,C", help="comma-separated labels to choose from")
    which.add_argument("--labels-file", metavar="FILE",
                       help="a labels file (one per line; '## group' lines; 'label | phrase')")
    p.add_argument("-k", type=_positive_int, default=5, metavar="N",
                   help="how many labels per image (default 5)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = add("albums", "list the smart albums (labels found in your photos) with counts")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = add("album", "list the photos of one smart album, best first")
    p.add_argument("name", metavar="NAME")
    _query_options(p)
    p = add("locate", "show where in a photo the query matches (a box and a heatmap)")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("query", metavar="QUERY", help='words as in search, e.g. "red kite - sky"')
    p.add_argument("--json", action="store_true", help="print the box, score and grid as JSON")
    p.add_argument("--out", metavar="FILE.png", help="write the photo with the map and box")


def _duplicates_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    from photofind.core.duplicates import TIERS

    p = add("duplicates", "list duplicate photos in tiers, with the one to keep (changes"
            " nothing)")
    p.add_argument("--tier", choices=TIERS, action="append", metavar="|".join(TIERS),
                   help="only this tier: exact copies, near-identical copies (resized,"
                        " recompressed, re-encoded), or similar shots (bursts); repeatable;"
                        " default all")
    p.add_argument("--json", action="store_true", help="print as JSON")


def _exchange_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """cluster embed, import, export: embeddings as Parquet shards, made on Ray or here."""
    p = add("cluster", "embed an archive on a Ray cluster: `photofind cluster embed ROOT..."
                       " --out DIR`")
    tools = p.add_subparsers(dest="cluster_command", metavar="TOOL", required=True)
    embed = tools.add_parser(
        "embed", help="embed the photos under folders into Parquet shards on Ray",
        description="List the photos under the folders, decode and embed them on a Ray"
        " cluster (a local one without --address), and write Parquet shards and a manifest"
        " to --out; run it again to finish an interrupted run. `photofind import DIR` then"
        " attaches the shards to a library. Needs `pip install 'photofind[cluster]'`.")
    embed.add_argument("roots", nargs="+", metavar="ROOT")
    embed.add_argument("--out", required=True, metavar="DIR", help="the folder of shards")
    embed.add_argument("--address", metavar="RAY_ADDRESS",
                       help="a running Ray cluster (host:port of `ray start --head`, or auto)")
    embed.add_argument("--shard-size", type=_positive_int, default=10_000, metavar="N",
                       help="files per shard (default 10000)")
    embed.add_argument("--batch-size", type=_positive_int, metavar="N",
                       help="pictures per embedding call (default: 16 on CPU, 64 on GPU)")
    embed.add_argument("--cpus-per-actor", type=_positive_int, default=1, metavar="N",
                       help="CPU threads of each embedding actor (default 1)")
    embed.add_argument("--actors", type=_positive_int, metavar="N",
                       help="embedding actors (default: as many as the CPUs allow)")
    embed.add_argument("--gpus", action="store_true",
                       help="one GPU per embedding actor (the model on torch with CUDA)")
    embed.add_argument("--decode-memory", type=_positive_int, metavar="MB",
                       help="memory Ray reserves for each actor that decodes")
    embed.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                       help="how embeddings are stored (default float16)")
    embed.add_argument("--json", action="store_true", help="print the counts as JSON")
    p = add("import", "attach Parquet embeddings (cluster embed, export) to this library")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--root", action="append", default=[], metavar="FOLDER",
                   help="add this folder to the library first (repeatable)")
    p.add_argument("--map", action="append", default=[], metavar="FROM=TO",
                   help="read paths starting with FROM as starting with TO (repeatable)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p = add("export", "write the library's embeddings to a folder of Parquet shards")
    p.add_argument("--parquet", required=True, metavar="DIR", help="the new folder")
    p.add_argument("--shard-size", type=_positive_int, default=10_000, metavar="N",
                   help="photos per shard (default 10000)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="how embeddings are stored (default float16)")


def _open_window(args: argparse.Namespace) -> int:
    import importlib

    options = [f"--{name}={getattr(args, name)}" for name in ("library", "model", "device",
                                                              "runtime")
               if getattr(args, name, None)]
    app = importlib.import_module("photofind.gui.app")  # Qt, only for the window
    return int(app.main(options))


def _query_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--limit", type=_positive_int, default=20, metavar="N",
                   help="how many results (default 20)")
    p.add_argument("--json", action="store_true", help="print results as JSON")


def _filter_options(p: argparse.ArgumentParser) -> None:
    from photofind.core.filters import KINDS, ORIENTATIONS

    g = p.add_argument_group("filters", "narrow the answer; several values of one filter are"
                             " alternatives, different filters all apply")
    g.add_argument("--in", dest="folders", action="append", default=[], metavar="DIR",
                   help="only photos in DIR or below it (repeatable)")
    g.add_argument("--after", metavar="DATE",
                   help="taken on or after DATE: 2019, 2019-06 or 2019-06-21")
    g.add_argument("--before", metavar="DATE",
                   help="taken on or before DATE (the whole year, month or day)")
    g.add_argument("--kind", dest="kinds", action="append", default=[], choices=KINDS,
                   help="photo, screenshot (PNG) or raw (repeatable)")
    g.add_argument("--orientation", dest="orientations", action="append", default=[],
                   choices=ORIENTATIONS, help="landscape, portrait or square (repeatable)")


def _filter_of(lib: Library, args: argparse.Namespace) -> Filter:
    """The filter the flags ask for; a usage error (one sentence) if one is wrong."""
    from photofind.core.filters import Filter, Period, folder_in_roots

    roots = [r.path for r in lib.catalog.roots()]
    return Filter(
        folders=tuple(dict.fromkeys(folder_in_roots(f, roots) for f in args.folders)),
        after=Period.parse(args.after) if args.after is not None else None,
        before=Period.parse(args.before) if args.before is not None else None,
        kinds=tuple(dict.fromkeys(args.kinds)),
        orientations=tuple(dict.fromkeys(args.orientations)))


def _print_browse(photos: list[PhotoInfo], as_json: bool) -> None:
    """The photos a filter keeps, newest first: date and path."""
    if as_json:
        print(json.dumps([{"path": p.path, "date": p.date, "online": p.online}
                          for p in photos]))
        return
    if not photos:
        print("No photos match these filters.", file=sys.stderr)
    for p in photos:
        print(f"{p.date}\t{_photo_line(p.path, p.online)}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="photofind: %(message)s")
    if not args.verbose:
        for noisy in ("huggingface_hub", "open_clip", "PIL"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.self_test:
        from photofind.selftest import main as self_test

        return self_test()
    if args.command in (None, "gui"):
        return _open_window(args)
    try:
        settings = Settings.resolve(args.library, args.model, args.device, args.runtime)
        code = COMMANDS[args.command](settings, args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here
        return code
    except BrokenPipeError:
        # The reader of our output has gone: point stdout at devnull so that the
        # interpreter's final flush does not complain (the way Python's docs advise).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except UsageError as exc:
        print(f"photofind: {exc}", file=sys.stderr)
        return 2
    except PhotofindError as exc:
        print(f"photofind: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # found damaged while reading, past the checks
        print(f"photofind: the library's catalog cannot be read ({exc}); `photofind doctor`"
              " checks it and `photofind index` moves a damaged one aside.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("photofind: interrupted.", file=sys.stderr)
        return 130


# --- commands --------------------------------------------------------------

_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7f]} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def _shown(text: str) -> str:
    """A name on one line of plain-text output (control characters escaped)."""
    return text.translate(_ESCAPES)


def _photo_line(path: str, online: bool) -> str:
    """A photo's path as a result line shows it, marked when its drive is away."""
    return _shown(path) + ("" if online else "\t(offline)")


def _add_roots(lib: Library, folders: list[str]) -> list[Root]:
    from photofind.core.roots import folder_to_add

    for folder in folders:  # check them all before changing anything
        folder_to_add(folder)
    roots = []
    for folder in folders:
        root, note = lib.add_root(folder)
        if note:
            print(f"photofind: {note}", file=sys.stderr)
        roots.append(root)
    return roots


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    with Library.open(settings, writer=True) as lib:
        roots = _add_roots(lib, args.folders)
    for root in roots:
        print(f"added {root.path}")
    print("Run `photofind index` to index them.")
    return 0


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.roots import find

    with Library.open(settings, writer=True) as lib:
        known = lib.catalog.roots()
        targets = []
        for folder in args.folders:
            root = find(folder, known)
            if root is None:
                raise PhotofindError(f"{folder} is not a folder of this library"
                                     " (see `photofind status`).")
            targets.append(root)
        for root in targets:
            count = lib.remove_root(root)
            print(f"removed {root.path} ({count} photos forgotten; files untouched)")
    return 0


def cmd_index(settings: Settings, args: argparse.Namespace, retry: bool = False) -> int:
    from photofind.core.indexer import run_index

    with Library.open(settings, writer=True) as lib:
        _apply_reading_option(lib, args)
        if retry:
            count = lib.catalog.forget_failures()
            print(f"retrying {count} files that could not be read before", file=sys.stderr)
        roots = _add_roots(lib, args.folders) if args.folders else lib.catalog.roots()
        if not roots:
            raise PhotofindError("The library has no folders yet: run"
                                 " `photofind index FOLDER` to add and index one.")
        bar = _ProgressBar() if sys.stderr.isatty() and not args.verbose else None
        run = run_index(lib, roots)
        try:
            while True:
                progress = next(run)
                if bar:
                    bar.show(progress.done, progress.total, progress.rate, progress.eta_s,
                             _stage(progress))
        except StopIteration as stop:
            report = stop.value
        finally:
            if bar:
                bar.clear()
    for path in report.offline:
        print(f"photofind: {path} is offline (missing or unreadable); its photos are kept.",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report.counts()))
    else:
        print(", ".join(f"{v} {k}" for k, v in report.counts().items()))
        if report.failed:
            print(f"{report.failed} files could not be read; `photofind failed` lists them.")
    return 0


def _apply_reading_option(lib: Library, args: argparse.Namespace) -> None:
    from photofind.core.textindex import set_reading

    if getattr(args, "ocr", None) is not None:
        set_reading(lib.catalog, args.ocr)


def _stage(progress: object) -> str:
    from photofind.core.reading import ReadingProgress

    return "reading text" if isinstance(progress, ReadingProgress) else "indexing"


def cmd_text(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.textindex import text_of

    out: list[dict[str, Any]] = []
    with Library.open(settings) as lib:
        for given in args.photos:
            path = str(Path(given).expanduser().resolve())
            row = lib.catalog.photo_by_path(path)
            if row is None:
                raise PhotofindError(f"{given} is not a photo of this library (index its"
                                     " folder first).")
            read = text_of(lib.catalog, row.id)
            out.append({"path": path, "read": read is not None,
                        "problem": read.problem if read else None,
                        "confidence": read.confidence if read else None,
                        "lines": [{"text": line.text, "confidence": round(line.confidence, 4),
                                   "box": list(line.box)} for line in read.lines]
                        if read else []})
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    for item in out:
        if len(out) > 1:
            print(f"== {_shown(item['path'])}")
        if not item["read"]:
            print("photofind: its text has not been read yet (`photofind index` reads it).",
                  file=sys.stderr)
        elif item["problem"]:
            print(f"photofind: its text could not be read ({item['problem']}).",
                  file=sys.stderr)
        elif not item["lines"]:
            print("photofind: no text was found in it.", file=sys.stderr)
        for line in item["lines"]:
            print(_shown(line["text"]))
    return 0


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    args.folders = []
    return cmd_index(settings, args, retry=True)


def cmd_failed(settings: Settings, args: argparse.Namespace) -> int:
    with Library.open(settings) as lib:
        failures = lib.catalog.failures()
    if args.json:
        print(json.dumps([{"path": path, "reason": reason} for path, reason in failures]))
    elif not failures:
        print("Every file was read.")
    for path, reason in ([] if args.json else failures):
        print(f"{_shown(reason)}\t{_shown(path)}")
    return 0


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.doctor import repair, run_checks

    with Library.open(settings, writer=args.repair) as lib:
        if args.repair:
            for line in repair(lib):
                print(f"repair: {line}")
        failed = 0
        for check in run_checks(lib, args.full):
            failed += not check.ok
            print(_shown(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}"))
    if failed:
        print(f"{failed} checks failed; `photofind doctor --repair` rebuilds the index and"
              " thumbnails.", file=sys.stderr)
    return 1 if failed else 0


def cmd_watch(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from photofind.core.albums import label_when_idle
    from photofind.core.indexer import IndexReport
    from photofind.core.watcher import WatchConfig, Watcher

    def show(report: IndexReport) -> None:
        counts = {k: v for k, v in report.counts().items() if k != "unchanged"}
        if args.json:
            print(json.dumps(counts), flush=True)
        else:
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp}  " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)

    with Library.open(settings, writer=True) as lib:
        _apply_reading_option(lib, args)
        if not lib.catalog.roots():
            raise PhotofindError("The library has no folders yet: add one with"
                                 " `photofind add FOLDER`.")
        config = WatchConfig(reconcile_every=60.0 * args.reconcile_minutes)
        watcher = Watcher(lib, config, on_report=show,
                          on_idle=lambda busy: label_when_idle(lib, busy)[1])
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
        if not args.json:
            print(f"watching {len(lib.catalog.roots())} folders; Ctrl+C to stop",
                  file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):  # run() saves on the way out
            watcher.run()
    return 0


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.search import Searcher, parse_query

    filtered = args.folders or args.after or args.before or args.kinds or args.orientations
    if not args.query and not filtered:
        raise UsageError("Give words or an image to search for, or filters (--in, --after,"
                         " --before, --kind, --orientation) to list the photos they keep.")
    terms = parse_query(args.query) if args.query else None
    with Library.open(settings) as lib:
        flt = _filter_of(lib, args)
        if terms is None:
            _print_browse(Searcher(lib).browse(flt, args.limit), args.json)
        else:
            _print_results(Searcher(lib).search(terms, args.limit, flt), args.json)
    return 0


def cmd_similar(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.search import Searcher

    with Library.open(settings) as lib:
        _print_results(Searcher(lib).similar(args.image, args.limit, _filter_of(lib, args)),
                       args.json)
    return 0


def _print_results(results: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"path": r.path, "score": r.score, "online": r.online}
                          for r in results]))
        return
    if not results:
        print("No photos found. Is the library indexed? See `photofind status`.",
              file=sys.stderr)
    for r in results:
        print(f"{r.score:.3f}\t{_photo_line(r.path, r.online)}")


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.doctor import status_report
    from photofind.core.textindex import status as text_status

    with Library.open(settings) as lib:
        status = status_report(lib)
        status["text"] = text = text_status(lib.catalog)
    if args.json:
        print(json.dumps(status))
        return 0
    print(f"library: {lib.dir}")
    print(f"photos:  {status['photos']} indexed, {status['failed']} could not be read")
    print(f"model:   {status['model']}  ({status['engine']})")
    print(f"text:    {text['read']} photos read, {text['with_text']} with text,"
          f" {text['waiting']} waiting (reading {'on' if text['reading'] else 'off'})")
    if not status["roots"]:
        print("folders: none yet; add one with `photofind index FOLDER`")
    for root in status["roots"]:
        print(f"  {root['state']:<8} {root['photos']:>7} photos  {_shown(root['path'])}")
    for reason, count in sorted(status["failures"].items(), key=lambda kv: -kv[1]):
        print(f"  {count:>6} x {reason}")
    return 0


def cmd_model(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.model.runtime import torch_installed, torch_missing

    if not torch_installed():
        raise PhotofindError(f"Exporting a model needs torch, but {torch_missing()}.")
    from photofind.core.model.export import export_to

    out = Path(args.out).expanduser().resolve()
    copied = export_to(args.spec, out, lambda: print(
        f"exporting {args.spec} to {out} (and checking it against open_clip) ...",
        file=sys.stderr))
    how = " (copied from the checked export made before)" if copied else ""
    print(f"exported {args.spec} to {out}{how}; use it with --model local-dir:{out}")
    return 0


def cmd_classify(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.albums import cached_concept_vectors
    from photofind.core.classify import (
        concept_vectors,
        file_vectors,
        labels_vocabulary,
        library_vocabulary,
        probabilities,
        read_vocabulary,
        top_labels,
    )

    paths = [str(Path(p).expanduser().resolve()) for p in args.images]
    for given, path in zip(args.images, paths, strict=True):
        if not Path(path).is_file():
            raise PhotofindError(f"There is no image file at {given}.")
    library = library_vocabulary()
    vocab = (labels_vocabulary(args.labels) if args.labels is not None
             else read_vocabulary(args.labels_file) if args.labels_file
             else library)
    out: list[dict[str, Any]] = []
    failed = 0
    with Library.open(settings) as lib:
        vectors = file_vectors(lib, paths)
        if vocab == library:  # its vectors are cached in the catalog
            texts, scale = cached_concept_vectors(lib.catalog, lib.model, vocab, lib.embedder,
                                                  store=False,  # a reader writes nothing
                                                  spec=settings.model)
        else:
            texts, scale = concept_vectors(lib.embedder(), vocab), lib.embedder().logit_scale
        for given, path, vec in zip(args.images, paths, vectors, strict=True):
            if isinstance(vec, str):
                print(f"photofind: cannot read {given} as an image ({vec}).", file=sys.stderr)
                failed += 1
                continue
            best = top_labels(probabilities(vec, texts, scale)[0], vocab.labels, args.k)
            out.append({"path": path, "labels": [{"label": label, "probability": round(p, 4)}
                                                 for label, p in best]})
    if args.json:
        print(json.dumps(out))
    for item in [] if args.json else out:
        print(_shown(item["path"]))
        for entry in item["labels"]:
            print(f"  {entry['probability']:.3f}\t{entry['label']}")
    return 1 if failed else 0


def _catch_up_labels(settings: Settings) -> None:
    """Label what is behind (a new vocabulary, photos indexed before smart albums)
    first, but only as the library's writer: a reader never writes into the
    library, so while another photofind writes (or on read-only media) the
    albums show the labels as stored, and the writer labels the rest."""
    from photofind.core.albums import labels_behind, update_labels

    with Library.open(settings) as lib:
        if not labels_behind(lib):
            return
    try:
        with Library.open(settings, writer=True) as lib:
            update_labels(lib)
    except PhotofindError as exc:
        print(f"photofind: some photos are not in their smart albums yet: {exc}",
              file=sys.stderr)


def cmd_albums(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.albums import smart_albums

    _catch_up_labels(settings)
    with Library.open(settings) as lib:
        albums = smart_albums(lib)
    if args.json:
        print(json.dumps([{"label": a.label, "group": a.group, "count": a.count}
                          for a in albums]))
    elif not albums:
        print("No smart albums yet: index some photos with `photofind index FOLDER`.",
              file=sys.stderr)
    for album in [] if args.json else albums:
        print(f"{album.count:>7}  {album.label}\t({album.group})")
    return 0


def cmd_album(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.albums import album_photos, smart_albums

    _catch_up_labels(settings)
    with Library.open(settings) as lib:
        photos = album_photos(lib, args.name, args.limit)
        if not photos and args.name not in {a.label for a in smart_albums(lib)}:
            raise PhotofindError(f"There is no smart album named {args.name!r}: `photofind"
                                 " albums` lists them.")
    if args.json:
        print(json.dumps([{"path": info.path, "probability": round(p, 4),
                           "online": info.online} for info, p in photos]))
        return 0
    for info, p in photos:
        print(f"{p:.3f}\t{_photo_line(info.path, info.online)}")
    return 0


def cmd_locate(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.locate import decode_for_locate, finish, locate_pixels, overlay
    from photofind.core.search import parse_query

    path = Path(args.image).expanduser()
    if not path.is_file():
        raise PhotofindError(f"There is no image file at {args.image}.")
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise PhotofindError(f"--out writes a PNG: give a file name ending in .png, not"
                             f" {args.out}.")
    parse_query(args.query)
    pixels, width, height = decode_for_locate(str(path.resolve()))
    with Library.open(settings) as lib:
        found = finish(locate_pixels(lib, pixels, width, height, args.query))
    assert found is not None  # nothing cancels it here
    if args.out:
        from PIL import Image

        try:
            overlay(Image.fromarray(pixels), found).save(args.out, "PNG")
        except OSError as exc:
            raise PhotofindError(f"Cannot write {args.out}: {exc.strerror or exc}.") from exc
    if args.json:
        print(json.dumps({"box": list(found.box), "score": round(found.score, 4),
                          "grid": [[round(float(v), 3) for v in row] for row in found.grid]}))
    else:
        x0, y0, x1, y1 = found.box
        print(f"box {x0},{y0} - {x1},{y1} of {found.width}x{found.height}"
              f"  (score {found.score:.3f})")
    return 0


def cmd_duplicates(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.duplicates import TIERS, find_duplicates

    with Library.open(settings) as lib:
        found = find_duplicates(lib, args.tier or TIERS)
    if found.content_hashes or found.perceptual:
        _keep_hashes(settings, found)
    if args.json:
        print(json.dumps([{"tier": g.tier, "keep": g.keep.path,
                           "others": [o.path for o in g.others]} for g in found.groups]))
        return 0
    if not found.groups:
        print("No duplicates found.", file=sys.stderr)
    for n, group in enumerate(found.groups):
        print(("\n" if n else "") + f"[{group.tier}] {len(group.members)} photos")
        print(f"  keep   {_shown(group.keep.path)}")
        for other in group.others:
            print(f"  other  {_shown(other.path)}")
    return 0


def _keep_hashes(settings: Settings, found: Found) -> None:
    """Store the hashes a reader computed, when this process can be the writer (a
    cache: when another photofind writes, or the media is read-only, they are
    computed again next time)."""
    from photofind.core.duplicates import store_hashes

    try:
        with Library.open(settings, writer=True) as lib:
            store_hashes(lib.catalog, found)
    except PhotofindError as exc:
        log.debug("the duplicate hashes were not kept: %s", exc)


def cmd_cluster(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.cluster import ClusterOptions, embed

    options = ClusterOptions(
        address=args.address, shard_size=args.shard_size, batch_size=args.batch_size,
        cpus_per_actor=args.cpus_per_actor, actors=args.actors, gpus=args.gpus,
        decode_memory_mb=args.decode_memory, dtype=args.dtype)
    out = Path(args.out).expanduser().resolve()
    report = embed([Path(r) for r in args.roots], out, settings.model, options,
                   lambda line: print(f"photofind: {line}", file=sys.stderr, flush=True))
    counts = {k: v for k, v in vars(report).items() if k != "seconds"}
    if args.json:
        print(json.dumps({**counts, "seconds": round(report.seconds, 2)}))
        return 0
    print(f"{report.files} files in {report.shards} shards ({report.written} written now,"
          f" {report.skipped} before): {report.embedded} embedded, {report.failed} could not"
          f" be read; `photofind import {_shown(str(out))}` attaches them to a library.")
    if report.late:
        print(f"photofind: {report.late} files are newer than the shard they belong to and"
              " are not in it; `photofind index` embeds them after the import.",
              file=sys.stderr)
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.exchange import import_shards

    maps = []
    for item in args.map:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise PhotofindError(f"--map takes FROM=TO (two path prefixes), not {item!r}.")
        maps.append((old, new))
    with Library.open(settings, writer=True) as lib:
        _add_roots(lib, args.root)
        if not lib.catalog.roots():
            raise PhotofindError("The library has no folders to attach embeddings to: add"
                                 " them with --root FOLDER (or `photofind add FOLDER`).")
        report = import_shards(lib, Path(args.folder).expanduser(), maps)
    if not report.complete:
        print(f"photofind: the run that writes {args.folder} has not finished; import it again"
              " when it has, for the rest.", file=sys.stderr)
    if args.json:
        print(json.dumps({**report.counts(), "examples": {
            name: getattr(report, name).paths
            for name in ("changed", "unreadable", "outside", "not_in_shards")}}))
        return 0
    print(f"{report.attached} photos attached from {report.rows} rows (none re-embedded),"
          f" {report.kept} already in the library")
    for name, what in (("changed", "differ from the file that was embedded"),
                       ("unreadable", "could not be read where they were embedded"),
                       ("outside", "are not readable photos of this library's folders"),
                       ("not_in_shards", "of the library's photos have no row in the"
                                         " shards")):
        tally = getattr(report, name)
        if tally.count:
            print(f"{tally.count} {what}, e.g.:")
            for path in tally.paths:
                print(f"  {_shown(path)}")
    if report.changed.count or report.unreadable.count or report.not_in_shards.count:
        print("`photofind index` embeds those here.")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from photofind.core.exchange import export_shards

    out = Path(args.parquet).expanduser().resolve()
    with Library.open(settings) as lib:
        manifest = export_shards(lib, out, args.shard_size, args.dtype)
    print(f"exported {manifest.counts()['embedded']} embeddings of {manifest.model} to"
          f" {_shown(str(out))} ({len(manifest.shards)} shards)")
    return 0


class _ProgressBar:
    def __init__(self) -> None:
        self.last = 0.0

    def show(self, done: int, total: int, rate: float, eta: float | None,
             stage: str = "indexing") -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        width = 30
        filled = int(width * done / max(total, 1))
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta is not None else "--:--"
        line = (f"\r{stage} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                f"  {rate:.1f} img/s  ETA {eta_text} ")
        sys.stderr.write(line)
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r" + " " * 79 + "\r")
        sys.stderr.flush()


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "add": cmd_add,
    "remove": cmd_remove,
    "index": cmd_index,
    "watch": cmd_watch,
    "search": cmd_search,
    "similar": cmd_similar,
    "status": cmd_status,
    "failed": cmd_failed,
    "doctor": cmd_doctor,
    "retry": cmd_retry,
    "model": cmd_model,
    "classify": cmd_classify,
    "albums": cmd_albums,
    "album": cmd_album,
    "locate": cmd_locate,
    "duplicates": cmd_duplicates,
    "cluster": cmd_cluster,
    "import": cmd_import,
    "export": cmd_export,
    "text": cmd_text,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
