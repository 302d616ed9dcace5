"""Give a converted model's inputs back the feature names of the schema.

skl2onnx turns every input name into a C identifier (`monthly charges` -> `monthly_charges`,
`plan.type` -> `plan_type`, and a clash gets a digit: `tenure_months1`), while the bundle's schema,
the API's request model and every feed use the names of mlci.yaml. ONNX itself allows any string as a
tensor name and onnxruntime feeds by that string, so the inputs are renamed after conversion, in the
order they were declared (the order of `initial_types`, which is the schema's): the model then has
exactly the schema's inputs, whatever characters a column name holds, and nothing else needs a map.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph (If/Loop/Scan bodies), which may read an outer input by name."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    yield from _graphs(sub)


def _tensor_names(model: onnx.ModelProto) -> set[str]:
    """Every tensor name in the model: inputs, outputs, constants, and what each node produces."""
    names: set[str] = set()
    for graph in _graphs(model.graph):
        names.update(i.name for i in graph.input)
        names.update(o.name for o in graph.output)
        names.update(t.name for t in graph.initializer)
        names.update(v.name for v in graph.value_info)
        for node in graph.node:
            names.update(node.output)
    return names


def _fresh(name: str, taken: set[str]) -> str:
    n = 1
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def _rename_everywhere(model: onnx.ModelProto, renames: dict[str, str]) -> None:
    """Apply the renames at once to every place a tensor is named, in the graph and its subgraphs."""
    for graph in _graphs(model.graph):
        for values in (graph.input, graph.output, graph.value_info, graph.initializer):
            for value in values:
                value.name = renames.get(value.name, value.name)
        for node in graph.node:
            node.input[:] = [renames.get(name, name) for name in node.input]
            node.output[:] = [renames.get(name, name) for name in node.output]


def restore_input_names(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """Rename the model's inputs, position by position, to `names` (in place; also returned).

    skl2onnx reserves its output names (`label`, `probabilities`) and its steps' names before it
    declares inputs, so a feature called `label` became `label1`: such a model tensor is moved aside to
    a fresh name (outputs are read by position) and the input gets the feature's name."""
    current = [i.name for i in model.graph.input]
    if len(current) != len(names):
        raise ValueError(f"the converted model has {len(current)} inputs for {len(names)} features")
    renames = {old: new for old, new in zip(current, names) if old != new}
    if not renames:
        return model
    taken = _tensor_names(model) | set(names)
    for clash in sorted(set(names) & (_tensor_names(model) - set(current))):
        renames[clash] = fresh = _fresh(clash, taken)
        taken.add(fresh)
    _rename_everywhere(model, renames)
    return model
