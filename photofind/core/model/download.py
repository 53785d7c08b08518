"""A model's first download from the hub: resumable, and stoppable at any moment.

huggingface_hub (2.x) writes each file under a temporary name it deletes when the
download fails, so an interrupted first download of a few hundred MB would start over.
Here each file grows as ``blobs/<etag>.incomplete`` in the repo's Hugging Face cache
folder and goes on from where it stopped with an HTTP Range request; complete, it
becomes ``blobs/<etag>``, linked from ``snapshots/<commit>/<path>``, with
``refs/main`` naming the commit: the cache layout huggingface_hub reads, so the normal
loading path finds the model. huggingface_hub still does the talking (the repo's file
list, each file's metadata, the HTTP session, its error messages).

``fetch`` runs in the caller (the command line: Ctrl-C stops it, the bytes stay);
``ModelDownload`` runs it in a child process that ``cancel`` stops at once, so the
window never waits on a network read.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from photofind.core.errors import ModelUnavailableError


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repo at the planned commit."""

    path: str  # in the repo, as "visual/model.onnx"
    url: str
    etag: str  # its blob's name in the cache
    size: int | None


@dataclass(frozen=True)
class Plan:
    """What a download fetches, and where it goes in the Hugging Face cache."""

    repo: str
    commit: str
    files: tuple[RemoteFile, ...]
    folder: str  # the repo's cache folder, ".../hub/models--owner--name"

    @property
    def total(self) -> int | None:
        """Bytes of every file, when the hub said them all."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)

    def done(self) -> int:
        """Bytes on disk so far, finished files and partial ones (a resumed download
        starts where the last one stopped)."""
        blobs = Path(self.folder, "blobs")
        total = 0
        for f in self.files:
            for name in (f.etag, f.etag + ".incomplete"):
                try:
                    total += (blobs / name).stat().st_size
                    break
                except OSError:
                    continue
        return total

    @property
    def snapshot(self) -> Path:
        return Path(self.folder, "snapshots", self.commit)


def _endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def repo_files(repo: str) -> tuple[str, list[str]]:
    """The commit the repo's main branch is at, and the paths of its files."""
    from huggingface_hub import HfApi

    info = HfApi(endpoint=_endpoint()).model_info(repo)
    return str(info.sha), [s.rfilename for s in info.siblings or []]


def plan_download(repo: str, allow: list[str], ignore: list[str]) -> Plan:
    """Ask the hub which files of ``repo`` match ``allow`` (less ``ignore``), at which
    commit, and how large each is. Raises what huggingface_hub raises."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import filter_repo_objects  # type: ignore[attr-defined]

    commit, names = repo_files(repo)
    files = []
    for name in filter_repo_objects(names, allow_patterns=allow, ignore_patterns=ignore):
        url = hf_hub_url(repo, name, revision=commit, endpoint=_endpoint())
        meta = get_hf_file_metadata(url)
        if not meta.etag:
            raise ModelUnavailableError(f"The hub sent no version tag for {repo}/{name}.")
        files.append(RemoteFile(name, url, meta.etag, meta.size))
    folder = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"))
    return Plan(repo, commit, tuple(files), folder)


def fetch(plan: Plan, progress_bar: bool = True) -> Path:
    """Download what ``plan`` lists that is not in the cache yet, going on from any
    partial file, and return the snapshot folder. A progress bar on stderr unless
    ``progress_bar`` is False (or huggingface_hub's bars are disabled)."""
    from huggingface_hub.utils.tqdm import tqdm

    bar = tqdm(total=plan.total, initial=plan.done(), unit="B",  # type: ignore[no-untyped-call]
               unit_scale=True, desc=f"Downloading {plan.repo}", disable=not progress_bar)
    with bar:
        for remote in plan.files:
            blob = Path(plan.folder, "blobs", remote.etag)
            if not blob.exists():
                _fetch_file(plan, remote, blob, bar.update)
            _link(blob, plan.snapshot / remote.path)
    refs = Path(plan.folder, "refs")
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(plan.commit)
    return plan.snapshot


def _fetch_file(plan: Plan, remote: RemoteFile, blob: Path,
                update: Callable[[int], object]) -> None:
    from filelock import FileLock

    blob.parent.mkdir(parents=True, exist_ok=True)
    locks = Path(plan.folder).parent / ".locks" / Path(plan.folder).name
    locks.mkdir(parents=True, exist_ok=True)
    part = blob.with_name(blob.name + ".incomplete")
    with FileLock(str(locks / f"{remote.etag}.lock")):  # huggingface_hub takes the same lock
        if blob.exists():
            return
        have = part.stat().st_size if part.exists() else 0
        if remote.size is None or have < remote.size:
            _stream(remote.url, part, have, update)
        size = part.stat().st_size
        if remote.size is not None and size != remote.size:
            part.unlink()  # not the file the hub described: start it over next time
            raise ModelUnavailableError(f"{remote.path} of {plan.repo} arrived with {size:,}"
                                        f" bytes instead of {remote.size:,}; try again.")
        os.replace(part, blob)


def _stream(url: str, part: Path, have: int, update: Callable[[int], object]) -> None:
    """Append the bytes of ``url`` from ``have`` on to ``part`` (all of them when the
    server ignores the Range), each on disk as soon as it arrived."""
    from huggingface_hub import constants, get_session, hf_raise_for_status
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"
    if have:
        headers["Range"] = f"bytes={have}-"
    with get_session().stream("GET", url, headers=headers, follow_redirects=True,
                              timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT) as response:
        if response.is_error:
            response.read()
            hf_raise_for_status(response)
        if have and response.status_code != 206:  # the whole file came back
            update(-have)
            have = 0
        with part.open("ab" if have else "wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
                out.flush()  # what arrived stays on disk if the process is killed
                update(len(chunk))


def _link(blob: Path, target: Path) -> None:
    """The snapshot's file for ``blob``: a relative symlink as huggingface_hub makes it,
    else a hard link, else a copy (filesystems without links)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(os.path.relpath(blob, target.parent), target)
    except OSError:
        try:
            os.link(blob, target)
        except OSError:
            shutil.copyfile(blob, target)


def _fetch_in_child(plan: Plan, send: Connection) -> None:
    try:
        fetch(plan, progress_bar=False)
        send.send("")
    except Exception as exc:  # the parent turns it into the user's sentence
        send.send(f"{type(exc).__name__}: {exc}")


class ModelDownload:
    """``fetch`` in a child process: ``cancel`` stops it at once, and what it wrote
    stays for the next download to go on from."""

    def __init__(self, plan: Plan, failure: str) -> None:
        self.plan = plan
        self.failure = failure  # the sentence to show when it fails (what to do instead)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._receive: Connection | None = None
        self.error: str | None = None  # why it failed, once it ended

    @property
    def total(self) -> int | None:
        return self.plan.total

    def done(self) -> int:
        return self.plan.done()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_fetch_in_child, args=(self.plan, send),
                                        name="photofind-download", daemon=True)
        self._process.start()
        send.close()

    def wait(self, timeout: float) -> bool:
        """True once the download ended (``error`` says whether it failed)."""
        assert self._process is not None and self._receive is not None
        self._process.join(timeout)
        if self._process.is_alive():
            return False
        if self._receive.closed:  # asked before
            return True
        message = self._receive.recv() if self._receive.poll() else "the download stopped"
        self._receive.close()
        self.error = message or None
        return True

    def cancel(self) -> None:
        """Stop now (the partial file stays); returns once the process is gone."""
        if self._process is not None and self.running:
            self._process.kill()
            self._process.join()
