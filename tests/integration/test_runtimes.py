"""The two runtimes: ONNX exports that match open_clip, interchangeable vectors,
int8 text that ranks as fp32 does, Immich's folder layout, and an ONNX model
that answers with torch made impossible to import."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photofind.core.config import Settings
from photofind.core.errors import ModelUnavailableError, PhotofindError
from photofind.core.model.onnx_runtime import OnnxEncoder
from photofind.core.model.torch_runtime import TorchEncoder
from photofind.testing.shapes import CLASSES, caption, draw_picture
from tests.conftest import REPO, Cli


def folder_of(spec: str) -> Path:
    return Path(spec.split(":", 1)[1])


def pictures(pre, per_class: int = 2, seed: int = 11) -> np.ndarray:  # type: ignore[no-untyped-def]
    from photofind.core.imaging import model_pixels

    rng = random.Random(seed)
    return np.stack([model_pixels(draw_picture(c, s, (160, 120), rng), pre)
                     for c, s in CLASSES for _ in range(per_class)])


def test_the_export_matches_open_clip_on_drawn_pictures_and_captions(toy_model: str,
                                                                      toy_onnx: str) -> None:
    from photofind.core.model.export import PARITY, check_parity
    from photofind.core.model.torch_runtime import load_open_clip

    model, tokenizer, _, towers = load_open_clip(toy_model)
    assert towers is not None
    towers.ensure("visual")
    towers.ensure("text")
    assert check_parity(model, tokenizer, folder_of(toy_onnx)) >= PARITY
    onnx = OnnxEncoder(folder_of(toy_onnx), toy_model)
    for tower in ("visual", "textual"):  # a dynamic batch: the graph is not fixed at 2
        batch = onnx._session(tower).get_inputs()[0].shape[0]
        assert not isinstance(batch, int)


def test_the_export_is_laid_out_for_a_quick_start_and_quick_batches(toy_onnx: str,
                                                                     tmp_path: Path) -> None:
    """Each image attention block is one ONNX Runtime Attention node (the same
    floats, the tower 4% faster in 46 MB less, benchmarks/bench_fusion.py); each masked
    text block splits its heads, turns the keys for the scores and merges the
    heads back, and no more (torch's own module exports with eight transposes a
    block, and ONNX Runtime runs that about 6% slower); the weights lie beside the
    graph, where ONNX Runtime maps them instead of parsing them (a session starts
    in half the time), and whoever may read the folder can read them (not its
    owner only)."""
    import onnx

    for tower in ("visual", "textual"):
        graph = folder_of(toy_onnx) / tower / "model.onnx"
        proto = onnx.load(graph, load_external_data=False).graph
        ops = [n.op_type for n in proto.node]
        blocks = ops.count("Softmax") + ops.count("Attention")
        assert blocks >= 1
        if tower == "visual":
            assert ops.count("Attention") == blocks and ops.count("Transpose") <= 1, ops
        else:
            assert ops.count("Transpose") <= 3 * blocks + 2, (ops.count("Transpose"), blocks)
        large = [t for t in proto.initializer if np.prod(t.dims) > 1024]
        assert large and all(t.data_location == onnx.TensorProto.EXTERNAL for t in large)
        data = graph.with_name("model.onnx.data")
        assert data.is_file()
        assert data.stat().st_mode == graph.stat().st_mode  # as readable as the graph
    probe = tmp_path / "new"
    probe.mkdir()
    assert folder_of(toy_onnx).stat().st_mode == probe.stat().st_mode  # as any new folder


def test_only_plain_self_attention_is_fused_and_it_computes_the_same_floats(
        tmp_path: Path) -> None:
    """Three blocks: one plain (fused), one with a causal mask, one whose
    attention weights are also an output of the graph (both left as exported);
    the fused graph gives what the exported one gives."""
    import onnx
    import onnxruntime as ort
    import torch

    from photofind.core.model.export import _plain
    from photofind.core.model.fusion import fuse_attention

    torch.manual_seed(0)
    mhas = [torch.nn.MultiheadAttention(32, 4, batch_first=True).eval() for _ in range(3)]
    causal = torch.full((5, 5), float("-inf")).triu(1)

    class Blocks(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([_plain(m) for m in mhas])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.blocks[0](x, x, x, need_weights=False)[0]
            x = x + self.blocks[1](x, x, x, need_weights=False, attn_mask=causal)[0]
            return x + self.blocks[2](x, x, x, need_weights=False)[0]

    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(Blocks().eval(), (torch.randn(2, 5, 32),), dynamo=True,
                                dynamic_shapes={"x": {0: batch}}, verbose=False)
    assert program is not None
    proto = program.model_proto
    last = [n for n in proto.graph.node if n.op_type == "Softmax"][-1]
    proto.graph.output.append(onnx.helper.make_tensor_value_info(
        last.output[0], onnx.TensorProto.FLOAT, None))
    exported = proto.SerializeToString()
    assert fuse_attention(proto) == 1
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Attention") == 1 and ops.count("Softmax") == 2
    x = np.random.default_rng(0).standard_normal((3, 5, 32)).astype(np.float32)
    name = proto.graph.input[0].name
    want = ort.InferenceSession(exported, providers=["CPUExecutionProvider"]).run(None, {name: x})
    got = ort.InferenceSession(proto.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {name: x})
    for a, b in zip(want, got, strict=True):
        assert np.allclose(a, b, atol=1e-6)


def test_the_exported_attention_computes_what_torchs_module_does() -> None:
    """Self-attention with no mask, a causal float mask or a boolean one, batch
    first or not, and cross-attention (handed to torch's module itself)."""
    import torch

    from photofind.core.model.export import _plain

    torch.manual_seed(0)
    causal = torch.full((5, 5), float("-inf")).triu(1)
    for batch_first in (True, False):
        mha = torch.nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()
        plain = _plain(mha)
        x, y = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
        if not batch_first:
            x, y = x.transpose(0, 1), y.transpose(0, 1)
        calls: list[int] = []
        mha.register_forward_hook(lambda *_, seen=calls: seen.append(1))
        with torch.inference_mode():
            for mask in (None, causal, causal.isinf()):
                want = mha(x, x, x, need_weights=False, attn_mask=mask)[0]
                got = plain(x, x, x, need_weights=False, attn_mask=mask)[0]
                assert torch.allclose(got, want, atol=1e-5), (batch_first, mask)
            assert len(calls) == 3  # the written-out path ran, not torch's module
            want = mha(x, y, y, need_weights=False)[0]
            assert torch.allclose(plain(x, y, y, need_weights=False)[0], want, atol=1e-6)
            assert len(calls) == 5  # cross-attention went to the module


def test_an_export_that_does_not_match_is_not_written(toy_model: str, toy_onnx: str,
                                                      tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The graphs of the real toy, checked against a torch model whose image
    weights were nudged: the check fails and no folder appears."""
    import torch

    from photofind.core.model import export, torch_runtime

    real = torch_runtime.load_open_clip

    def nudged(spec: str):  # type: ignore[no-untyped-def]
        model, tokenizer, cfg, towers = real(spec)
        towers.ensure("visual")
        towers.ensure("text")
        with torch.no_grad():
            model.visual.proj.add_(0.05 * torch.randn_like(model.visual.proj))
        return model, tokenizer, cfg, None

    def copy_graph(module, example, path: Path, name: str, seq: bool) -> None:  # type: ignore[no-untyped-def]
        for file in (folder_of(toy_onnx) / path.parent.name).glob("model.onnx*"):
            shutil.copy(file, path.parent / file.name)

    monkeypatch.setattr(torch_runtime, "load_open_clip", nudged)
    monkeypatch.setattr(export, "_export", copy_graph)
    with pytest.raises(PhotofindError, match="does not match"):
        export.export_onnx(toy_model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.iterdir())  # no half-written temporary folder either


def test_onnx_and_torch_vectors_are_interchangeable(toy_model: str, toy_onnx: str) -> None:
    torch_enc = TorchEncoder(toy_model, "cpu", int8_text=False)
    onnx_enc = OnnxEncoder(folder_of(toy_onnx), toy_model, int8_text=False)
    assert onnx_enc.preprocess == torch_enc.preprocess and onnx_enc.dim == torch_enc.dim
    assert abs(onnx_enc.logit_scale - torch_enc.logit_scale) < 1e-3 * torch_enc.logit_scale
    pixels = pictures(torch_enc.preprocess)
    a, b = onnx_enc.encode_images(pixels), torch_enc.encode_images(pixels)
    assert (a * b).sum(1).min() >= 0.9999
    texts = [caption(c, s) for c, s in CLASSES] + ["", "a " * 40]
    t1, t2 = onnx_enc.encode_texts(texts), torch_enc.encode_texts(texts)
    assert (t1 * t2).sum(1).min() >= 0.9999
    alone = np.stack([onnx_enc.encode_texts([t])[0] for t in texts])  # short, one at a time
    assert (alone * t2).sum(1).min() >= 0.9999


def test_int8_text_on_onnx_ranks_every_caption_as_fp32_does(toy_model: str, toy_onnx: str
                                                            ) -> None:
    fp32 = OnnxEncoder(folder_of(toy_onnx), toy_model, int8_text=False)
    int8 = OnnxEncoder(folder_of(toy_onnx), toy_model)
    assert int8.int8_text and not fp32.int8_text
    images = fp32.encode_images(pictures(fp32.preprocess))
    captions = [caption(c, s) for c, s in CLASSES]
    a, b = int8.encode_texts(captions), fp32.encode_texts(captions)
    assert not np.array_equal(a, b)  # really another set of weights
    assert (a * b).sum(1).min() >= 0.999
    ranks_a, ranks_b = np.argsort(-(a @ images.T), axis=1), np.argsort(-(b @ images.T), axis=1)
    assert (ranks_a[:, :2] == ranks_b[:, :2]).all()


def test_int8_copies_quantise_the_fused_attention_and_leave_any_other_in_fp32(
        toy_model: str, toy_onnx: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export's fused attention becomes int8 with the rest (and still
    encodes as fp32 does); an Attention another tool wrote with an attention
    bias (a causal mask) keeps it: the quantiser would drop the bias."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from photofind.core.model.onnx_runtime import int8_copy

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    visual = folder_of(toy_onnx) / "visual" / "model.onnx"
    fused = int8_copy(visual)
    ops = [n.op_type for n in onnx.load(fused, load_external_data=False).graph.node]
    assert "QAttention" in ops and "Attention" not in ops
    fp32, int8 = OnnxEncoder(folder_of(toy_onnx), toy_model), \
        OnnxEncoder(folder_of(toy_onnx), toy_model, int8_image=True)
    pixels = pictures(fp32.preprocess)
    assert (fp32.encode_images(pixels) * int8.encode_images(pixels)).sum(1).min() >= 0.99

    width, heads, length = 32, 4, 5
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(a.astype(np.float32), name) for a, name in (
        (0.3 * rng.standard_normal((width, 3 * width)), "w"),
        (0.1 * rng.standard_normal(3 * width), "b"),
        (np.triu(np.full((1, 1, length, length), -10000.0), 1), "causal"))]
    for bias in (["", "", "causal"], []):
        node = helper.make_node("Attention", ["x", "w", "b", *bias], ["y"],
                                domain="com.microsoft", num_heads=heads)
        graph = helper.make_graph(
            [node], "other", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                            [None, length, width])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            weights if bias else weights[:2])
        folder = tmp_path / ("masked" if bias else "open")
        folder.mkdir()
        onnx.save(helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]),
            folder / "model.onnx")
    x = rng.standard_normal((2, length, width)).astype(np.float32)

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {"x": x})[0])

    masked = tmp_path / "masked" / "model.onnx"
    copy = int8_copy(masked)
    assert "QAttention" not in [n.op_type for n in onnx.load(copy).graph.node]
    assert np.abs(run(copy) - run(masked)).max() < 0.1  # int8 weights, the mask kept
    assert np.abs(run(tmp_path / "open" / "model.onnx") - run(masked)).max() > 1


@pytest.mark.parametrize("link", ["symbolic", "hard", "none"])
def test_int8_copies_are_made_from_any_folder_and_write_nothing_into_it(
        toy_model: str, toy_onnx: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        link: str) -> None:
    """A snapshot in the Hugging Face cache links each file to a blob, and a
    backup tool hard-links unchanged files; the int8 copy is still made (the
    onnx package refuses both for external weights) and ranks as the int8 copy
    of the real files does. Nothing is written beside the user's files (a
    folder installed for every user is read-only), and a new revision of the
    weights alone gets a new copy."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = folder_of(toy_onnx)
    snapshot = tmp_path / "snapshot"
    for i, file in enumerate(f for f in source.rglob("*") if f.is_file()):
        blob = tmp_path / "blobs" / str(i)
        blob.parent.mkdir(exist_ok=True)
        shutil.copyfile(file, blob)
        linked = snapshot / file.relative_to(source)
        linked.parent.mkdir(parents=True, exist_ok=True)
        if link == "symbolic":
            linked.symlink_to(blob)
        elif link == "hard":
            linked.hardlink_to(blob)
        else:
            shutil.copyfile(blob, linked)
    textual = snapshot / "textual"
    before = textual.stat().st_mtime_ns
    on_links = OnnxEncoder(snapshot, toy_model)
    plain = OnnxEncoder(source, toy_model)
    assert on_links.int8_text
    captions = [caption(c, s) for c, s in CLASSES]
    a, b = on_links.encode_texts(captions), plain.encode_texts(captions)
    assert (a * b).sum(1).min() >= 0.99999
    pixels = pictures(plain.preprocess)  # the fp32 image tower reads its weights through links
    assert (on_links.encode_images(pixels) * plain.encode_images(pixels)).sum(1).min() >= 0.99999
    assert textual.stat().st_mtime_ns == before  # no file made (or removed) in the folder
    made = sorted((tmp_path / "cache" / "photofind" / "onnx-int8").iterdir())
    # the snapshot's copy and the source's, and no work folders left
    assert [f.name.split("-")[0] for f in made] == ["textual", "textual"]

    data = textual / "model.onnx.data"  # the weights of a new revision, the graph as it was
    weights = data.read_bytes()
    data.unlink()
    data.write_bytes(weights[:-4] + bytes(4))
    OnnxEncoder(snapshot, toy_model).encode_texts(captions[:1])
    assert len(list((tmp_path / "cache" / "photofind" / "onnx-int8").iterdir())) == 3


def immich_layout(source: Path, out: Path) -> Path:
    """The toy export as Immich's exporter writes it: graphs fixed at batch 1
    and the full context, int32 text, no photofind extras in config.json."""
    import onnx

    shutil.copytree(source, out)
    config = json.loads((out / "config.json").read_text())
    context = config["text_cfg"]["context_length"]
    config.pop("photofind")
    (out / "config.json").write_text(json.dumps(config))
    for tower, dims in (("visual", [1]), ("textual", [1, context])):
        model = onnx.load(str(out / tower / "model.onnx"))
        shape = model.graph.input[0].type.tensor_type.shape
        for i, value in enumerate(dims):
            shape.dim[i].ClearField("dim_param")
            shape.dim[i].dim_value = value
        onnx.save(model, str(out / tower / "model.onnx"))
    return out


def test_a_folder_in_immichs_layout_loads_as_local_dir_with_the_same_rankings(
        toy_model: str, toy_onnx: str, tmp_path: Path) -> None:
    from photofind.core.model.loading import load_encoder

    folder = immich_layout(folder_of(toy_onnx), tmp_path / "ViT-toy__immich")
    immich = load_encoder(Settings.resolve(str(tmp_path / "lib"), f"local-dir:{folder}",
                                           "cpu", "auto"), int8_text=False)
    ours = OnnxEncoder(folder_of(toy_onnx), toy_model, int8_text=False)
    assert isinstance(immich, OnnxEncoder) and immich.runtime == "onnx"
    assert immich._session("textual").get_inputs()[0].shape == [1, 16]
    images = ours.encode_images(pictures(ours.preprocess))
    other = immich.encode_images(pictures(ours.preprocess))  # a row at a time
    assert (images * other).sum(1).min() >= 0.9999
    captions = [caption(c, s) for c, s in CLASSES]
    a, b = immich.encode_texts(captions), ours.encode_texts(captions)
    assert np.array_equal(np.argsort(-(a @ other.T), axis=1), np.argsort(-(b @ images.T), axis=1))


@pytest.mark.parametrize("install", ["pip", "installer"])
def test_an_open_clip_model_without_torch_says_how_to_get_it(toy_model: str, tmp_path: Path,
                                                            monkeypatch, install: str  # type: ignore[no-untyped-def]
                                                            ) -> None:
    """Installed with pip without the extra, or by an installer (whose app
    carries photofind's modules as bytecode only)."""
    from photofind.core.model import loading, sources

    monkeypatch.setenv("PHOTOFIND_ONNX_CACHE", str(tmp_path / "no-export-yet"))
    monkeypatch.setattr(loading, "torch_installed", lambda: False)
    if install == "installer":
        monkeypatch.setattr(sources, "EXPORTER_CODE", tmp_path / "bytecode-only")
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(ModelUnavailableError) as info:
        loading.load_encoder(Settings.resolve(str(tmp_path / "lib"), toy_model, "cpu", "onnx"))
    message = str(info.value)
    assert "hf-hub:immich-app/" in message
    # Only a pip install can take a pip install; an installer's app says what it carries.
    assert ("pip install 'photofind[torch]'" in message) == (install == "pip")
    assert ("installed app carries ONNX Runtime, not torch" in message) == (install == "installer")
    assert "\n" not in message


POISON = '''
import os
with open(os.environ["TORCH_MARKER"], "a") as fh:
    fh.write(__name__ + "\\n")
raise ImportError("torch is poisoned in this test")
'''
NO_TORCH = '''
import sys
from photofind.cli import main
code = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "open_clip", "torchvision"))
assert not leaked, leaked
sys.exit(code)
'''


def in_hf_cache(folder: Path, cache: Path, repo: str) -> None:
    """``folder`` as the Hugging Face cache holds a downloaded repo."""
    base = cache / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text("0" * 40)
    shutil.copytree(folder, base / "snapshots" / ("0" * 40))


@pytest.mark.parametrize("source", ["local-dir", "hf-hub"])
def test_an_onnx_model_indexes_and_answers_with_torch_poisoned(toy_onnx: str, tmp_path: Path,
                                                               source: str) -> None:
    """An ONNX folder (our export, or Immich's layout in the Hugging Face cache
    as `hf-hub:immich-app/...` downloads it) needs no torch: with torch and
    open_clip made to fail on import, index, search, similar and status work."""
    from photofind.testing.samples import make_sample_library

    for name in ("torch", "open_clip"):
        (tmp_path / "poison" / name).mkdir(parents=True)
        (tmp_path / "poison" / name / "__init__.py").write_text(POISON)
    photos = make_sample_library(tmp_path / "Pictures", per_class=2, large=0)
    marker = tmp_path / "torch-imported"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOFIND_")}
    env["PHOTOFIND_OCR"] = "0"  # reading text is tested on its own
    spec = toy_onnx
    if source == "hf-hub":
        spec = "hf-hub:immich-app/ViT-toy__photofind-tests"
        immich = immich_layout(folder_of(toy_onnx), tmp_path / "immich")
        in_hf_cache(immich, tmp_path / "hub", spec.removeprefix("hf-hub:"))
        env["HF_HUB_CACHE"] = str(tmp_path / "hub")
    env.update(PHOTOFIND_LIBRARY=str(tmp_path / "library"), PHOTOFIND_MODEL=spec,
               HF_HUB_OFFLINE="1", TORCH_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([str(tmp_path / "poison"), str(REPO)]))

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert json.loads(run("index", str(tmp_path / "Pictures"), "--json"))["added"] == len(photos)
    red = [str(p.path) for p in photos if (p.colour, p.shape) == ("red", "circle")]
    hits = json.loads(run("search", "a red circle", "-n", "2", "--json"))
    assert len(hits) == 2 and set(red) & {h["path"] for h in hits}
    similar = json.loads(run("similar", red[0], "-n", "3", "--json"))
    assert len(similar) == 3 and red[0] not in [h["path"] for h in similar]
    status = json.loads(run("status", "--json"))
    assert status["engine"] == "ONNX Runtime on CPU" and status["photos"] == len(photos)
    assert not marker.exists()


def test_switching_runtime_never_re_embeds(cli: Cli, tmp_path: Path) -> None:
    from photofind.testing.samples import make_sample_library

    photos = make_sample_library(tmp_path / "Pictures", per_class=1, large=0)
    first = cli.json("index", str(tmp_path / "Pictures"), "--runtime", "onnx")
    assert first["embedded"] == len(photos)
    again = cli.json("index", "--runtime", "torch")
    assert again["embedded"] == 0 and again["unchanged"] == len(photos)
    by_torch = cli.run("search", "a red circle", "-n", "1", "--json", "--runtime", "torch")
    by_onnx = cli.run("search", "a red circle", "-n", "1", "--json", "--runtime", "onnx")
    assert json.loads(by_torch.stdout)[0]["path"] == json.loads(by_onnx.stdout)[0]["path"]
    status = json.loads(cli.run("status", "--json", "--runtime", "torch").stdout)
    assert status["runtime"] == "torch" and status["engine"].startswith("torch on ")


def test_a_bad_runtime_or_a_taken_export_folder_is_one_sentence(cli: Cli, tmp_path: Path
                                                                ) -> None:
    bad = cli.run("status", check=False, extra_env={"PHOTOFIND_RUNTIME": "tensorflow"})
    assert bad.returncode == 1 and "Unknown runtime 'tensorflow'" in bad.stderr
    assert "Traceback" not in bad.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "photo.jpg").write_bytes(b"mine")
    taken = cli.run("model", "export", cli.model, "--out", str(tmp_path / "taken"), check=False)
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert "Traceback" not in taken.stderr
    assert (tmp_path / "taken" / "photo.jpg").read_bytes() == b"mine"


def test_the_int8_image_tower_is_stored_under_its_own_model_id(cli: Cli, tmp_path: Path) -> None:
    from photofind.testing.samples import make_sample_library

    photos = make_sample_library(tmp_path / "Pictures", per_class=1, large=0)
    int8 = {"PHOTOFIND_IMAGE_INT8": "1"}
    report = json.loads(cli.run("index", str(tmp_path / "Pictures"), "--json",
                                extra_env=int8).stdout)
    assert report["embedded"] == len(photos)
    status = json.loads(cli.run("status", "--json", extra_env=int8).stdout)
    assert status["model"] == cli.model + "#int8-image"
    fp32 = cli.index()  # the fp32 vectors are another space: embedded anew, not mixed
    assert fp32["embedded"] == len(photos)
    import sqlite3

    db = sqlite3.connect(cli.library / "catalog.sqlite3")
    models = dict(db.execute("SELECT model, COUNT(*) FROM embeddings GROUP BY model"))
    assert models == {cli.model: len(photos), cli.model + "#int8-image": len(photos)}
    for env in (int8, {}):
        hits = json.loads(cli.run("search", "a red circle", "-n", "3", "--json",
                                  extra_env=env).stdout)
        assert any("red-circle" in h["path"] for h in hits)
    on_torch = cli.run("search", "a red circle", "--runtime", "torch", check=False,
                       extra_env=int8)
    assert on_torch.returncode == 1 and "ONNX Runtime option" in on_torch.stderr


def test_model_export_writes_a_folder_that_ranks_like_torch(cli: Cli, toy_onnx: str,
                                                            tmp_path: Path) -> None:
    """`photofind model export` of the toy (converted before: the suite's
    cached export is copied) gives a folder that, as --model local-dir: on ONNX
    Runtime, labels new pictures as the toy does on torch."""
    out = tmp_path / "exported"
    done = cli.run("model", "export", cli.model, "--out", str(out))
    assert f"--model local-dir:{out}" in done.stdout
    from photofind.core.model.sources import is_onnx_folder

    assert is_onnx_folder(out)
    rng = random.Random(77)
    paths = []
    for colour, shape in CLASSES[::2]:
        path = tmp_path / "new" / f"{colour}-{shape}.png"
        path.parent.mkdir(exist_ok=True)
        draw_picture(colour, shape, (200, 160), rng).save(path)
        paths.append(str(path))
    labels = ",".join(f"{c} {s}" for c, s in CLASSES)
    ask = ["classify", *paths, "--labels", labels, "-k", str(len(CLASSES)), "--json"]
    by_torch = json.loads(cli.run(*ask, "--runtime", "torch", timeout=600).stdout)
    by_onnx = json.loads(cli.run(*ask, "--runtime", "onnx", "--model",
                                 f"local-dir:{out}", timeout=600).stdout)
    for torch_row, onnx_row in zip(by_torch, by_onnx, strict=True):
        # The same best label, and every label's probability alike (near-ties
        # further down may swap: int8 text weights on one side).
        assert onnx_row["labels"][0]["label"] == torch_row["labels"][0]["label"]
        probs = [{x["label"]: x["probability"] for x in row["labels"]}
                 for row in (torch_row, onnx_row)]
        diff = max(abs(probs[0][label] - probs[1][label]) for label in probs[0])
        assert diff < 0.02, (onnx_row["path"], diff)
    right = sum(row["labels"][0]["label"] == Path(row["path"]).stem.replace("-", " ")
                for row in by_onnx)
    assert right >= 0.8 * len(paths), right
