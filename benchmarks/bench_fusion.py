"""The image tower as exported before fusion and after (core/model/fusion.py):
its speed alone, the peak memory of a process that runs it, and how far apart
their vectors are, in fp32 and as int8 copies (one run, alternating; each
measurement in a fresh process with photofind's session options).

ViT-B-32-256 with random weights, exported here with torch (a minute).

    python benchmarks/bench_fusion.py [--repeat 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CACHE, own_peak_rss_mb

BATCH = 8  # the rows photofind runs at once (onnx_runtime.RUN_ROWS)


def _child(path: str, seconds: float) -> None:
    from photofind.core.model.onnx_runtime import new_session

    session = new_session(Path(path))
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((BATCH, 3, 256, 256), np.float32)
    first = session.run(None, {name: x})[0]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {name: x})
        done += BATCH
    print(json.dumps({"rate": done / (time.perf_counter() - start),
                      "rss": own_peak_rss_mb(),
                      "first": first[:4].tolist()}))


def _graphs(folder: Path) -> dict[str, Path]:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from photofind.core.model import export
    from photofind.core.model.fusion import fuse_attention
    from photofind.core.model.onnx_runtime import INT8_OPS
    from photofind.core.model.torch_runtime import load_open_clip
    from photofind.testing.toyclip import random_model_dir

    model, _, _, towers = load_open_clip(f"local-dir:{random_model_dir('ViT-B-32-256', CACHE)}")
    if towers is not None:
        towers.ensure("visual")  # the weights, not their placeholders
    model.eval()
    with export._quiet(), export._no_fast_path(torch), export._plain_attention(model):
        plain = export.tower_graph(export._tower(model, "image"), torch.randn(2, 3, 256, 256),
                                   "image", seq=False)
    fused = copy.deepcopy(plain)
    print(f"{fuse_attention(fused)} attention blocks fused", flush=True)
    paths = {}
    logging.disable(logging.WARNING)  # the quantiser's advice on pre-processing
    for name, proto in (("exported", plain), ("fused", fused)):
        (folder / name).mkdir()
        paths[name] = folder / name / "model.onnx"
        onnx.save_model(proto, str(paths[name]), save_as_external_data=True,
                        location="model.onnx.data")
        (folder / f"{name}-int8").mkdir()
        paths[f"{name} int8"] = folder / f"{name}-int8" / "model.onnx"
        quantize_dynamic(str(paths[name]), str(paths[f"{name} int8"]),
                         weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS,
                         use_external_data_format=True)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.seconds)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        paths = _graphs(Path(tmp))
        runs: dict[str, list[dict[str, object]]] = {name: [] for name in paths}
        for _ in range(args.repeat):
            for name, path in paths.items():
                out = subprocess.run([sys.executable, __file__, "--child", str(path),
                                      "--seconds", str(args.seconds)], check=True,
                                     capture_output=True, text=True).stdout
                runs[name].append(json.loads(out.strip().splitlines()[-1]))
    print(f"ViT-B-32-256 random weights, image tower alone, batches of {BATCH}, "
          f"medians of {args.repeat}, alternating")
    print(f"{'graph':<16}{'img/s':>8}{'peak RSS MB':>13}{'max |diff|':>12}")
    rate = {name: statistics.median(float(r["rate"]) for r in rs)  # type: ignore[arg-type]
            for name, rs in runs.items()}
    for name, rs in runs.items():
        base = "exported int8" if name.endswith("int8") else "exported"
        diff = float(np.abs(np.array(rs[0]["first"]) - np.array(runs[base][0]["first"])).max())
        rss = statistics.median(float(r["rss"]) for r in rs)  # type: ignore[arg-type]
        print(f"{name:<16}{rate[name]:8.2f}{rss:13.0f}{diff:12.2g}")
    for kind in ("", " int8"):
        print(f"fused/exported{kind}: {rate['fused' + kind] / rate['exported' + kind]:.3f}x")


if __name__ == "__main__":
    main()
