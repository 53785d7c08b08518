"""Fusing an exported graph's self-attention into ONNX Runtime's ``Attention``.

Each self-attention block that ``export._plain`` writes out without a mask
(the image tower's; CLIP's text tower has its causal mask) is one projection, a
head split, the scaled scores, a softmax, the weighted sum and a merge:
fourteen nodes. ONNX Runtime has one operator for all of it
(``com.microsoft.Attention``: the same projection on MLAS, then the heads in
its own kernel). It computes the same floats (to the last bit on the toy and on
ViT-B-32-256); ViT-B-32-256's image tower alone runs 4% faster in 46 MB less,
and its int8 copy (the quantiser turns the operator into ``QAttention``) 8%
faster in 30 MB less (benchmarks/bench_fusion.py).

A block is fused only when every step is exactly that operator's arithmetic:
the permutations, the gathered indices, the shapes and the scale are read
from the graph, and no value inside the block is used outside it. Anything
else (the text tower's causal mask) stays as exported, and the export's parity
check compares the fused graph with open_clip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import onnx

DOMAIN = "com.microsoft"


def fuse_attention(model: onnx.ModelProto) -> int:
    """Rewrite each plain self-attention block of ``model`` in place; returns
    how many were fused."""
    import onnx

    graph = model.graph
    view = _View(graph)
    fused: list[tuple[list[onnx.NodeProto], onnx.NodeProto]] = []
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        try:
            fused.append(_block(view, softmax))
        except _Mismatch:
            continue
    drop = {id(node) for nodes, _ in fused for node in nodes[1:]}
    merged = {id(nodes[0]): attention for nodes, attention in fused}
    kept = [merged.get(id(node), node) for node in graph.node if id(node) not in drop]
    del graph.node[:]
    graph.node.extend(kept)
    if fused:
        if not any(op.domain == DOMAIN for op in model.opset_import):
            model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, 1))
        _drop_unused(graph)
    return len(fused)


class _Mismatch(Exception):
    """This softmax is not in a plain self-attention block."""


def _expect(condition: bool) -> None:
    if not condition:
        raise _Mismatch


class _View:
    """Who makes and who reads each value of a graph, and its small constants."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        from onnx import numpy_helper

        self.maker: dict[str, onnx.NodeProto] = {
            out: node for node in graph.node for out in node.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for value in node.input:
                self.readers.setdefault(value, []).append(node)
        self.outputs = {value.name for value in graph.output}
        self.dims = {t.name: tuple(t.dims) for t in graph.initializer}
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer
                          if int(np.prod(t.dims)) <= 8}  # shapes, indices, scales

    def check(self, node: onnx.NodeProto, op: str, **attrs: object) -> None:
        """``node`` is a standard ``op`` with these attributes."""
        import onnx

        have = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        _expect(node.op_type == op and node.domain in ("", "ai.onnx")
                and all(have.get(k) == v for k, v in attrs.items()))

    def private(self, value: str, readers: int = 1) -> bool:
        """Only the block reads ``value``: ``readers`` nodes, and not the graph."""
        return len(self.readers.get(value, [])) == readers and value not in self.outputs

    def made(self, value: str, op: str, readers: int = 1, **attrs: object) -> onnx.NodeProto:
        """The ``op`` node that makes ``value``, which only the block reads."""
        node = self.maker.get(value)
        if node is None:
            raise _Mismatch
        self.check(node, op, **attrs)
        _expect(self.private(value, readers))
        return node

    def reader(self, node: onnx.NodeProto, op: str, **attrs: object) -> onnx.NodeProto:
        """The ``op`` node that alone reads ``node``'s output."""
        _expect(self.private(node.output[0]))
        after = self.readers[node.output[0]][0]
        self.check(after, op, **attrs)
        return after

    def constant(self, value: str) -> npt.NDArray[np.generic]:
        _expect(value in self.constants)
        return self.constants[value]


def _block(v: _View, softmax: onnx.NodeProto) -> tuple[list[onnx.NodeProto], onnx.NodeProto]:
    """The nodes of the plain attention around ``softmax`` (its merge first) and
    the one node that computes them."""
    import onnx

    v.check(softmax, "Softmax", axis=-1)
    scores = v.made(softmax.input[0], "MatMul")
    scaled = v.made(scores.input[0], "Mul")
    keys_t = v.made(scores.input[1], "Transpose", perm=[0, 1, 3, 2])
    factor = [name for name in scaled.input if name in v.constants]
    _expect(len(factor) == 1 and v.constants[factor[0]].size == 1)
    scale = float(v.constants[factor[0]].reshape(-1)[0])
    query_input = next(name for name in scaled.input if name != factor[0])
    weighted = v.reader(softmax, "MatMul")
    gathers = [v.made(query_input, "Gather", axis=0), v.made(keys_t.input[0], "Gather", axis=0),
               v.made(weighted.input[1], "Gather", axis=0)]
    heads_t = v.made(gathers[0].input[0], "Transpose", readers=3, perm=[2, 0, 3, 1, 4])
    for i, gather in enumerate(gathers):  # q, k, v: 0, 1, 2 of the one split
        index = v.constant(gather.input[1])
        _expect(gather.input[0] == heads_t.output[0] and index.ndim == 0 and int(index) == i)
    split = v.made(heads_t.input[0], "Reshape")
    shape = v.constant(split.input[1])  # (batch, tokens, q/k/v, heads, head width)
    _expect(shape.shape == (5,) and int(shape[0]) == -1 and int(shape[1]) > 0
            and int(shape[2]) == 3 and int(shape[3]) > 0 and int(shape[4]) > 0)
    heads, width = int(shape[3]), int(shape[3]) * int(shape[4])
    biased = v.made(split.input[0], "Add")
    bias = [name for name in biased.input if v.dims.get(name) == (3 * width,)]
    _expect(len(bias) == 1)
    projected = v.made(next(name for name in biased.input if name != bias[0]), "MatMul")
    _expect(len(v.dims.get(projected.input[1], ())) == 2
            and v.dims[projected.input[1]][1] == 3 * width)
    merged_t = v.reader(weighted, "Transpose", perm=[0, 2, 1, 3])
    merge = v.reader(merged_t, "Reshape")
    merge_shape = v.constant(merge.input[1])  # (batch, tokens, width), as it came in
    _expect(merge_shape.shape == (3,) and int(merge_shape[0]) == -1
            and int(merge_shape[1]) == int(shape[1]) and int(merge_shape[2]) == width)
    attention = onnx.helper.make_node(
        "Attention", [projected.input[0], projected.input[1], bias[0]], [merge.output[0]],
        name=f"{merge.name or merge.output[0]}_attention", domain=DOMAIN,
        num_heads=heads, scale=scale)
    return [merge, merged_t, weighted, softmax, scores, scaled, keys_t, *gathers, heads_t,
            split, biased, projected], attention


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Initialisers and value notes that no node (nor a node of a branch or loop
    body) reads or makes any more."""
    used = _names(graph) | {value.name for value in (*graph.input, *graph.output)}
    for field in (graph.initializer, graph.value_info):
        keep = [entry for entry in field if entry.name in used]
        del field[:]
        field.extend(keep)


def _names(graph: onnx.GraphProto) -> set[str]:
    """Every value the nodes of ``graph`` and of its subgraphs read or make."""
    import onnx

    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for attr in node.attribute:
            for sub in (attr.g,) if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                names |= _names(sub) | {value.name for value in sub.output}
    return names
