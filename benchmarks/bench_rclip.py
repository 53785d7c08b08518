"""photofind against rclip, side by side: the same 120 camera-like 12 MP JPEGs,
the same ViT-B-32-256 architecture with the same random weights (rclip gets an
ONNX export of photofind's random-weight folder in the layout it downloads, so it
runs offline), the same CPU threads, one run, alternating, several repetitions.

For each contender and repetition:
  indexing   a whole new process indexes the corpus into an empty index: rclip
             through ``rclip.main.init_rclip`` (the indexing its CLI runs before
             it searches, without the search), photofind through ``photofind index``;
  cold query a whole new process answers one text query on that index, top 20
             (``rclip --no-indexing -f -t 20`` / ``photofind search --json -n 20``);
  peak RSS   of the largest process (ru_maxrss, as the other benchmarks report it)
             and of the whole process tree (photofind decodes in worker
             processes; summed, sampled every 50 ms);
  CPU time   user + system seconds per image of the whole indexing process tree
             (steadier than wall time when other work shares the machine).
It prints the medians and the ratios photofind/rclip: indexing images/s (higher
is better) and cold query wall time (lower is better).

photofind runtimes: PHOTOFIND_RUNTIME=onnx|torch measures that one; unset, it
measures torch, and ONNX Runtime too when the checkout has it (``--runtime`` in
``photofind search --help``). ``--variant LABEL:KEY=VAL,...`` adds a photofind
contender run with extra environment (e.g. an opt-in int8 image tower).

photofind runs from PYTHONPATH (e.g. another branch's worktree): its processes
start in a scratch folder, since ``python -m`` would put the current folder first.

rclip runs from its own virtualenv (it needs Python 3.12+), e.g.
``python3.12 -m venv ~/rclip-venv && ~/rclip-venv/bin/pip install rclip==4.0.8``:
``--rclip-python`` or RCLIP_PYTHON names its interpreter, else the one beside an
``rclip`` on PATH. It never downloads: its model folder is made here (torch).

    python benchmarks/bench_rclip.py [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from common import CACHE, PHOTOFIND, corpus
from rclip_model import fresh_datadir, rclip_model_dir

QUERY = "a dog on the beach"
TOP = 20
RCLIP_INDEX = ("import os, sys; from rclip.main import init_rclip;"
               " r, m, db = init_rclip(os.getcwd(), int(sys.argv[1]));"
               " r.close(); m.close(); db.close()")


# A small process between us and the measured one: a child's ru_maxrss starts
# from the RSS of the process it was forked from, so that one must be small.
HELPER = ("import json, os, resource, subprocess, sys, time;"
          " result, cwd, cpus, *cmd = sys.argv[1:];"
          " cpus and os.sched_setaffinity(0, {int(c) for c in cpus.split(',')});"
          " t = time.perf_counter(); rc = subprocess.run(cmd, cwd=cwd or None).returncode;"
          " wall = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN);"
          " open(result, 'w').write(json.dumps([wall, u.ru_maxrss, u.ru_utime + u.ru_stime]));"
          " sys.exit(rc)")


@dataclass
class Run:
    wall: float
    cpu: float      # user + system seconds, the whole process tree
    rss_mb: float   # largest single process
    tree_mb: float  # whole process tree, sampled
    stdout: str


def measured(cmd: list[str], env: dict[str, str], cwd: Path | None = None,
             cpus: set[int] | None = None) -> Run:
    """Run ``cmd`` to the end as a new process; wall time, CPU time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err, result = (Path(tmp) / name for name in ("out", "err", "result"))
        with out.open("wb") as stdout, err.open("wb") as stderr:
            helper = subprocess.Popen(
                [sys.executable, "-c", HELPER, str(result), str(cwd or ""),
                 ",".join(map(str, sorted(cpus or ()))), *cmd],
                stdout=stdout, stderr=stderr, env=env)
            tree_peak = [0.0]
            done = threading.Event()
            sampler = threading.Thread(target=_sample_tree, args=(helper.pid, done, tree_peak))
            sampler.start()
            rc = helper.wait()
            done.set()
            sampler.join()
        if rc != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({rc}):"
                             f" {err.read_text(errors='replace')[-2000:]}")
        wall, rss_kb, cpu = json.loads(result.read_text())
        return Run(wall, cpu, rss_kb / 1024, tree_peak[0] / 2**20,
                   out.read_text(errors="replace"))


def _sample_tree(pid: int, done: threading.Event, peak: list[float]) -> None:
    """The peak of the summed RSS of ``pid``'s descendants (not ``pid`` itself)."""
    try:
        helper = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.wait(0.05):
        total = 0
        try:
            procs = helper.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        peak[0] = max(peak[0], total)


@dataclass
class Contender:
    name: str
    env: dict[str, str]
    cpus: set[int] | None  # the CPUs it may run on (None: all)
    index_rate: list[float] = field(default_factory=list)
    index_cpu: list[float] = field(default_factory=list)
    index_rss: list[float] = field(default_factory=list)
    index_tree: list[float] = field(default_factory=list)
    query_wall: list[float] = field(default_factory=list)
    query_cpu: list[float] = field(default_factory=list)
    query_rss: list[float] = field(default_factory=list)

    def index(self, folder: Path, store: Path) -> Run:
        raise NotImplementedError

    def query(self, folder: Path, store: Path) -> Run:
        raise NotImplementedError


@dataclass
class Rclip(Contender):
    python: str = ""
    model: Path = Path()

    def index(self, folder: Path, store: Path) -> Run:
        fresh_datadir(self.model, store)
        return measured([self.python, "-c", RCLIP_INDEX, "8"], self._env(store), folder,
                        self.cpus)

    def query(self, folder: Path, store: Path) -> Run:
        run = measured([self.python, "-m", "rclip", "--no-indexing", "-f", "-t", str(TOP),
                        QUERY], self._env(store), folder, self.cpus)
        assert len(run.stdout.split()) == min(TOP, _count(folder)), run.stdout
        return run

    def _env(self, store: Path) -> dict[str, str]:
        return {**self.env, "RCLIP_DATADIR": str(store), "HF_HUB_OFFLINE": "1"}


@dataclass
class Photofind(Contender):
    spec: str = ""

    def index(self, folder: Path, store: Path) -> Run:
        run = measured([*PHOTOFIND, "index", str(folder), *self._options(store)], self.env,
                       store.parent, self.cpus)
        report = json.loads(run.stdout)
        assert report["embedded"] == _count(folder), report
        return run

    def query(self, folder: Path, store: Path) -> Run:
        run = measured([*PHOTOFIND, "search", QUERY, "-n", str(TOP), *self._options(store)],
                       self.env, store.parent, self.cpus)
        assert len(json.loads(run.stdout)) == min(TOP, _count(folder)), run.stdout
        return run

    def runtime_shown(self, store: Path) -> str:
        out = subprocess.run([*PHOTOFIND, "status", *self._options(store)], env=self.env,
                             cwd=store.parent, capture_output=True, text=True,
                             check=True).stdout
        status = json.loads(out)
        return str(status.get("runtime", "(status shows no runtime)"))

    def _options(self, store: Path) -> list[str]:
        return ["--library", str(store), "--model", self.env.get("PHOTOFIND_MODEL", self.spec),
                "--device", "cpu", "--json"]


def _count(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.suffix.lower() == ".jpg")


def onnx_supported(env: dict[str, str]) -> bool:
    out = subprocess.run([*PHOTOFIND, "search", "--help"], env=env, cwd=tempfile.gettempdir(),
                         capture_output=True, text=True, check=True).stdout
    return "--runtime" in out


def photofind_contenders(args: argparse.Namespace, env: dict[str, str], spec: str,
                         cpus: set[int] | None) -> list[Contender]:
    chosen = os.environ.get("PHOTOFIND_RUNTIME")
    supported = onnx_supported(env)
    if chosen == "onnx" and not supported:
        raise SystemExit("PHOTOFIND_RUNTIME=onnx, but this photofind checkout has no ONNX"
                         " runtime (no --runtime option); put one first on PYTHONPATH.")
    runtimes = [chosen] if chosen else (["torch", "onnx"] if supported else ["torch"])
    out: list[Contender] = []
    for runtime in runtimes:
        extra = {"PHOTOFIND_RUNTIME": runtime} if supported else {}
        out.append(Photofind(f"photofind {runtime}", {**env, **extra}, cpus, spec=spec))
    for variant in args.variant:
        label, _, pairs = variant.partition(":")
        extra = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
        out.append(Photofind(f"photofind {label}", {**env, **extra}, cpus, spec=spec))
    return out


def rclip_python() -> str:
    """The interpreter of the virtualenv that holds the ``rclip`` on PATH."""
    found = shutil.which("rclip")
    if found is None:
        return ""
    return str(Path(found).parent / "python")


def warm_up(contenders: list[Contender], folder: Path, tmp: Path) -> None:
    """One untimed index and query each on four photos: model files in the page
    cache for everyone, and any one-time step (photofind's first ONNX export) done."""
    small = tmp / "warm"
    small.mkdir()
    for p in sorted(folder.glob("*.jpg"))[:4]:
        (small / p.name).symlink_to(p)
    for file in folder.glob("*.jpg"):  # the corpus in the page cache too
        file.read_bytes()
    for i, c in enumerate(contenders):
        store = tmp / f"warm-store-{i}"
        c.index(small, store)
        c.query(small, store)
        if isinstance(c, Photofind):
            shown, wanted = c.runtime_shown(store), c.env.get("PHOTOFIND_RUNTIME")
            print(f"{c.name}: status shows runtime {shown}", file=sys.stderr)
            if wanted and shown != wanted:
                raise SystemExit(f"{c.name} asked for {wanted} but runs {shown}")
        shutil.rmtree(store)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rclip-python", default=os.environ.get("RCLIP_PYTHON")
                        or rclip_python())
    parser.add_argument("--variant", action="append", default=[],
                        help="LABEL:KEY=VAL,... an extra photofind contender")
    args = parser.parse_args()
    if not args.rclip_python:
        raise SystemExit("rclip not found: install it in a Python 3.12+ virtualenv and pass"
                         " --rclip-python (or RCLIP_PYTHON) with that venv's python.")
    from photofind.testing.toyclip import random_model_dir

    CACHE.mkdir(parents=True, exist_ok=True)
    weights = random_model_dir("ViT-B-32-256", CACHE)
    spec = f"local-dir:{weights}"
    folder = corpus(120, 0, 0)
    threads = str(args.threads)
    # rclip reads no text in photos: photofind's CLIP pass is what is compared (the
    # words are read after it, in a stage of their own; bench_ocr.py measures it)
    env = {**os.environ, "PHOTOFIND_THREADS": threads, "OMP_NUM_THREADS": threads,
           "PHOTOFIND_OCR": "0"}
    env.pop("PHOTOFIND_RUNTIME", None)
    own = sorted(os.sched_getaffinity(0))
    # rclip sizes its ONNX Runtime pool by the CPUs it may run on: give both sides
    # the same ``threads`` CPUs (nothing to do on a machine with that many)
    cpus = set(own[:args.threads]) if len(own) > args.threads else None
    rclip = Rclip("rclip", env, cpus, python=args.rclip_python,
                  model=rclip_model_dir(weights, CACHE))
    contenders = [rclip, *photofind_contenders(args, env, spec, cpus)]
    n = _count(folder)
    with tempfile.TemporaryDirectory(prefix="bench-rclip-") as tmpdir:
        tmp = Path(tmpdir)
        warm_up(contenders, folder, tmp)
        for rep in range(args.repeat):
            order = contenders[rep % len(contenders):] + contenders[:rep % len(contenders)]
            for c in order:
                store = tmp / "store"
                ix = c.index(folder, store)
                q = c.query(folder, store)
                shutil.rmtree(store)
                c.index_rate.append(n / ix.wall)
                c.index_cpu.append(ix.cpu / n)
                c.index_rss.append(ix.rss_mb)
                c.index_tree.append(ix.tree_mb)
                c.query_wall.append(q.wall)
                c.query_cpu.append(q.cpu)
                c.query_rss.append(q.rss_mb)
                print(f"rep {rep + 1} {c.name:<26} index {n / ix.wall:6.2f} img/s"
                      f" ({ix.wall:5.1f} s, {ix.cpu / n:4.2f} CPU s/img, RSS {ix.rss_mb:5.0f} MB,"
                      f" tree {ix.tree_mb:5.0f} MB)"
                      f"  cold query {q.wall:5.2f} s ({q.cpu:5.2f} CPU s, RSS {q.rss_mb:5.0f} MB)",
                      file=sys.stderr, flush=True)
    med = statistics.median
    size = sum(p.stat().st_size for p in folder.glob("*.jpg")) / 1e6
    print(f"{n} camera-like 12 MP JPEGs ({size:.0f} MB), ViT-B-32-256 random weights,"
          f" {args.threads} threads, medians of {args.repeat}, alternating")
    print(f"{'contender':<26} {'index img/s':>11} {'CPU s/img':>9} {'index RSS MB':>12}"
          f" {'tree RSS MB':>11}"
          f" {'cold query s':>12} {'CPU s':>6} {'query RSS MB':>12}")
    for c in contenders:
        print(f"{c.name:<26} {med(c.index_rate):11.2f} {med(c.index_cpu):9.3f}"
              f" {med(c.index_rss):12.0f}"
              f" {med(c.index_tree):11.0f} {med(c.query_wall):12.2f} {med(c.query_cpu):6.2f}"
              f" {med(c.query_rss):12.0f}")
    for c in contenders[1:]:
        print(f"summary: {c.name}/rclip indexing {med(c.index_rate) / med(rclip.index_rate):.2f}x"
              f" (higher is better; target >= 1.05, int8 image tower >= 1.3),"
              f" cold query {med(c.query_wall) / med(rclip.query_wall):.2f}x"
              " (lower is better; target <= 0.8); CPU time (lower is better): indexing"
              f" {med(c.index_cpu) / med(rclip.index_cpu):.2f}x,"
              f" cold query {med(c.query_cpu) / med(rclip.query_cpu):.2f}x")


if __name__ == "__main__":
    main()
