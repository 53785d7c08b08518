"""A toy CLIP, really trained on drawn shapes in about a minute on 2 CPU cores.

Tests cannot download pretrained weights, so they use this: an open_clip
config small enough to train quickly, saved as a ``local-dir:`` model folder
(open_clip_config.json + open_clip_model.safetensors) that photofind loads
through exactly the code path real models take. Training is deterministic
from its seed; the folder is cached, keyed by a hash of this trainer's code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from platformdirs import user_cache_dir

from photofind.core.imaging import Preprocess, model_pixels
from photofind.testing import shapes

IMAGE_SIZE = 48
CONTEXT_LENGTH = 16
MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's constants, as real models use
STD = (0.26862954, 0.26130258, 0.27577711)
MODEL_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 2, "width": 64, "patch_size": 6,
                   "head_width": 32, "pool_type": "avg"},
    "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 1},
}
PREPROCESS_CFG = {"size": IMAGE_SIZE, "mean": list(MEAN), "std": list(STD),
                  "interpolation": "bicubic", "resize_mode": "shortest"}
TEMPLATES = ("a {c} {s}", "a photo of a {c} {s}", "{c} {s}", "a picture of a {c} {s}",
             "a {s} that is {c}")
SEED = 1234
STEPS = 1500  # fewer left the toy at ~0.88 top-1 on fresh pictures (tests ask 0.9)
BATCH = 128
IMAGES = 6000


def cache_key() -> str:
    h = hashlib.sha256()
    for module in (__file__, shapes.__file__):
        h.update(Path(module).read_bytes())
    h.update(json.dumps([MODEL_CFG, PREPROCESS_CFG, SEED, STEPS, BATCH, IMAGES]).encode())
    return h.hexdigest()[:16]


def toy_model_dir(cache: Path | None = None) -> Path:
    """The cached toy model folder, trained first if it is not there yet."""
    root = cache or Path(os.environ.get("PHOTOFIND_TOY_CACHE")
                         or user_cache_dir("photofind", False))
    target = root / f"toy-clip-{cache_key()}"
    if (target / "open_clip_model.safetensors").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="toy-clip-", dir=root))
    try:
        train(tmp)
        with contextlib.suppress(OSError):  # another process finished first: same result
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def save_model_dir(model: Any, model_cfg: dict[str, Any], preprocess_cfg: dict[str, Any],
                   out: Path) -> Path:
    """Write ``model`` as a ``local-dir:`` folder open_clip (and photofind) loads."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}, indent=2))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    return out


def random_model_dir(name: str = "ViT-B-32", cache: Path | None = None) -> Path:
    """A random-weight copy of a real architecture as a ``local-dir:`` folder:
    the same compute as the pretrained model, for speed measurements."""
    import open_clip

    root = cache or Path(os.environ.get("PHOTOFIND_TOY_CACHE")
                         or user_cache_dir("photofind", False))
    target = root / f"random-{name}"
    if not (target / "open_clip_model.safetensors").is_file():
        model = open_clip.create_model(name, pretrained=None).eval()
        tmp = Path(tempfile.mkdtemp(prefix=f"random-{name}-", dir=root))
        save_model_dir(model, open_clip.get_model_config(name),
                       open_clip.get_model_preprocess_cfg(model), tmp)
        with contextlib.suppress(OSError):
            os.replace(tmp, target)
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = random.Random(seed)
    pre = Preprocess(IMAGE_SIZE, MEAN, STD)
    pixels = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    labels = np.empty(n, np.int64)
    for i in range(n):
        k = i % len(shapes.CLASSES)
        colour, shape = shapes.CLASSES[k]
        w, h = rng.choice([(72, 72), (84, 63), (63, 84), (96, 72)])
        pixels[i] = model_pixels(shapes.draw_picture(colour, shape, (w, h), rng), pre)
        labels[i] = k
    return pixels, labels


def train(out: Path, steps: int = STEPS, images: int = IMAGES, seed: int = SEED) -> Path:
    """Train and save a local-dir model folder into ``out``."""
    import open_clip
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the same reduction order on every machine with >= 2 cores
    try:
        torch.manual_seed(seed)
        rng = random.Random(seed)
        model = open_clip.CLIP(**MODEL_CFG)  # type: ignore[arg-type]
        tokenizer = open_clip.SimpleTokenizer(context_length=CONTEXT_LENGTH)
        pixels, labels = _dataset(images, seed)
        x_all = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255)
        x_all = (x_all - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        y_all = torch.from_numpy(labels)
        captions = [[t.format(c=c, s=s) for t in TEMPLATES] for c, s in shapes.CLASSES]
        tokens = {cap: tokenizer([cap])[0] for caps in captions for cap in caps}
        # Random token embeddings are distinct enough for 20 captions; freezing
        # the 49408-row table saves a third of every step.
        model.token_embedding.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.05)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps,
                                                    pct_start=0.1)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        n_classes = len(shapes.CLASSES)
        for _step in range(steps):
            idx = torch.randint(0, images, (BATCH,), generator=gen)
            x, y = x_all[idx], y_all[idx]
            if rng.random() < 0.5:
                x = x.flip(3)
            text = torch.stack([tokens[rng.choice(caps)] for caps in captions])
            img_f = model.encode_image(x, normalize=True)
            txt_f = model.encode_text(text, normalize=True)
            logits = model.logit_scale.exp().clamp(max=100) * img_f @ txt_f.T  # (B, classes)
            onehot = F.one_hot(y, n_classes).float()
            targets_t = onehot.T / onehot.T.sum(1, keepdim=True).clamp(min=1)
            present = onehot.sum(0) > 0
            loss = F.cross_entropy(logits, y) + F.cross_entropy(
                logits.T[present], targets_t[present])
            # Pictures of one class should also be near each other, as real
            # CLIP's image-to-image neighbours are ("find similar").
            same = (y[:, None] == y[None, :]).float().fill_diagonal_(0)
            has = same.sum(1) > 0
            ii = (20.0 * img_f @ img_f.T).fill_diagonal_(-1e4)
            loss = loss + 0.5 * F.cross_entropy(
                ii[has], same[has] / same[has].sum(1, keepdim=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        save_model_dir(model.eval(), MODEL_CFG, PREPROCESS_CFG, out)
    finally:
        torch.set_num_threads(threads)
    return out


if __name__ == "__main__":
    start = time.perf_counter()
    print(toy_model_dir(), f"{time.perf_counter() - start:.1f}s")
