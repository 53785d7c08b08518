"""A Hugging Face hub on localhost for download tests: one model repo served from a
folder, the way the hub answers huggingface_hub (the repo's info, HEAD metadata, GET
with Range), slowly, counting every byte of file content it sends."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "c0ffee" + "0" * 34


class FakeHub:
    """``with FakeHub(repo, folder) as hub``: point HF_ENDPOINT at ``hub.url``."""

    def __init__(self, repo: str, folder: Path, bytes_per_s: int = 4_000_000) -> None:
        self.repo = repo
        self.files = {p.relative_to(folder).as_posix(): p.read_bytes()
                      for p in sorted(folder.rglob("*")) if p.is_file()}
        self.etags = {name: hashlib.sha256(data).hexdigest() for name, data in self.files.items()}
        self.rate = bytes_per_s
        self.down = False  # True: connections drop mid-file, as when the network goes
        self.gets: list[tuple[str, list[int]]] = []  # per GET: its Range header, bytes sent
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def served(self) -> int:
        """Bytes of file content sent so far."""
        return self.served_since(0)

    def served_since(self, first: int) -> int:
        """Bytes sent by the GETs from number ``first`` on (``len(hub.gets)`` taken
        before a download): a cancelled client's request may still be winding down."""
        with self._lock:
            return sum(sent[0] for _, sent in self.gets[first:])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _file(self) -> str | None:
                prefix = f"/{hub.repo}/resolve/"
                if not self.path.startswith(prefix):
                    return None
                name = self.path[len(prefix):].split("/", 1)[-1]
                return name if name in hub.files else None

            def _info(self) -> bool:
                if not self.path.split("?")[0].startswith(f"/api/models/{hub.repo}"):
                    return False
                body = json.dumps({"id": hub.repo, "modelId": hub.repo, "sha": COMMIT,
                                   "private": False,
                                   "siblings": [{"rfilename": n} for n in hub.files]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True

            def _headers(self, name: str, status: int, start: int) -> None:
                size = len(hub.files[name])
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hub.etags[name]}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(size - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()

            def do_HEAD(self) -> None:
                name = self._file()
                if name is None:
                    self.send_error(404)
                    return
                self._headers(name, 200, 0)

            def do_GET(self) -> None:
                if self._info():
                    return
                name = self._file()
                if name is None:
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range", "")
                sent = [0]
                with hub._lock:
                    hub.gets.append((wanted, sent))
                start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
                self._headers(name, 206 if wanted else 200, start)
                data = hub.files[name][start:]
                step = 32_768
                try:
                    for at in range(0, len(data), step):
                        if hub.down:
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        piece = data[at:at + step]
                        self.wfile.write(piece)
                        self.wfile.flush()
                        with hub._lock:
                            sent[0] += len(piece)
                        time.sleep(len(piece) / hub.rate)
                except OSError:
                    pass  # the client went away (a cancelled download)

        return Handler
