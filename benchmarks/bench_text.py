"""Text query encoding: photofind's path (stop at the end token, int8 weights)
against open_clip's full 77-token fp32 context, ViT-B-32 with random weights
(the real compute), in one run.

    python benchmarks/bench_text.py [--threads 2] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    import open_clip
    import torch

    from photofind.core.model.torch_runtime import encode_text_short, quantize_text

    torch.set_num_threads(args.threads)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    int8 = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    int8.load_state_dict(model.state_dict())
    quantize_text(int8)
    tokens = open_clip.get_tokenizer("ViT-B-32")(["two dogs in the snow"])
    rows = []
    for name, fn in (("open_clip encode_text (77 tokens)", model.encode_text),
                     ("short path, fp32", lambda t: encode_text_short(model, t)),
                     ("short path, int8 (photofind, CPU)", lambda t: encode_text_short(int8, t))):
        times = []
        with torch.inference_mode():
            for i in range(args.repeat + 5):
                start = time.perf_counter()
                fn(tokens)
                if i >= 5:
                    times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        rows.append((name, statistics.median(times), times[int(0.95 * (len(times) - 1))]))
    print(f"{'path':<36} {'p50 ms':>8} {'p95 ms':>8}   ({args.threads} threads)")
    for name, p50, p95 in rows:
        print(f"{name:<36} {p50:8.1f} {p95:8.1f}")
    print(f"summary: photofind's text path is {rows[0][1] / rows[2][1]:.2f}x faster than"
          f" open_clip's at the median (the short path alone {rows[0][1] / rows[1][1]:.2f}x)")


if __name__ == "__main__":
    main()
