"""Which runtime runs the model, and with how many CPU threads.

``auto`` picks torch when it is installed and a CUDA or Metal device is there
(found without importing torch, which takes seconds), otherwise ONNX Runtime
on the CPU. Nothing here imports torch or onnxruntime.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys

from photofind.core.config import RUNTIMES
from photofind.core.errors import PhotofindError


def torch_missing() -> str:
    """Why there is no torch, and how to get it, for this kind of install: an
    installer's app cannot take a pip install, a pip install can."""
    if getattr(sys, "frozen", False):
        return ("this installed app carries ONNX Runtime, not torch (a pip install of"
                " photofind with its torch extra has torch)")
    return "torch is not installed: install photofind with its torch extra" \
        " (pip install 'photofind[torch]')"


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None \
        and importlib.util.find_spec("open_clip") is not None


def gpu_present() -> bool:
    """An NVIDIA driver, or Apple silicon (Metal): where torch pays."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def choose_runtime(runtime: str, device: str) -> str:
    """"onnx" or "torch" for a runtime setting and a device setting."""
    if runtime not in RUNTIMES:
        raise PhotofindError(f"Unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
    if runtime == "torch" or (runtime == "auto" and device in ("cuda", "mps")):
        if not torch_installed():
            raise PhotofindError(f"The torch runtime was asked for, but {torch_missing()}.")
        return "torch"
    if runtime == "onnx" and device in ("cuda", "mps"):
        raise PhotofindError(f"photofind runs ONNX Runtime on the CPU only; for {device}"
                             " use --runtime torch.")
    if runtime == "auto" and device == "auto" and torch_installed() and gpu_present():
        return "torch"
    return "onnx"


def physical_cores() -> int:
    """Physical cores where we can tell (Linux), else the logical count."""
    try:
        with open("/proc/cpuinfo") as fh:
            pairs = {(block.split("physical id")[1].split("\n")[0],
                      block.split("core id")[1].split("\n")[0])
                     for block in fh.read().split("\n\n") if "core id" in block}
        if pairs:
            return len(pairs)
    except (OSError, IndexError):
        pass
    return os.cpu_count() or 1


def cpu_threads() -> int:
    """PHOTOFIND_THREADS when set, else one thread per physical core (more only
    fight over the same floating-point units)."""
    text = os.environ.get("PHOTOFIND_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return physical_cores()


def int8_text_default(device: str) -> bool:
    """int8 text weights on the CPU unless PHOTOFIND_TEXT_INT8=0."""
    return device == "cpu" and os.environ.get("PHOTOFIND_TEXT_INT8") != "0"
