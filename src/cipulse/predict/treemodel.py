"""A gradient-boosted tree ensemble evaluated in pure Python.

Training uses LightGBM; its `dump_model()` JSON is converted into this small format so that the CI gate
loads and scores a model without importing LightGBM, NumPy or scikit-learn (importing those costs more
than the whole prediction). Decisions follow LightGBM's numerical splits exactly, including where
missing values go. Per-feature contributions use the path-attribution method (the change in a node's
expected value along the decision path), cheap enough for the gate and summing exactly to the score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Node layout in a flat list per tree: internal node =
# [feature, threshold, default_left, missing, left, right, value]; leaf = [value].
# Children are indexes into the same list.
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_MISSING_CODES = {"None": _MISSING_NONE, "Zero": _MISSING_ZERO, "NaN": _MISSING_NAN}
_ZERO = 1e-35


class ModelFormatError(ValueError):
    """The tree ensemble JSON is not something this evaluator understands."""


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    feature_names: tuple[str, ...]
    trees: tuple[tuple[tuple[float, ...], ...], ...]

    def raw_score(self, row: list[float | None]) -> float:
        """Sum of leaf values (LightGBM's raw score, before the sigmoid)."""
        return sum(tree[_leaf(tree, row)][-1] for tree in self.trees)

    def contributions(self, row: list[float | None]) -> tuple[float, dict[str, float]]:
        """(bias, {feature: contribution}) with bias + sum(contributions) == raw_score(row)."""
        bias = 0.0
        result: dict[str, float] = {}
        for tree in self.trees:
            node = tree[0]
            bias += node[-1]
            index = 0
            while len(node) > 1:
                index = _child(node, row)
                child = tree[index]
                name = self.feature_names[int(node[0])]
                result[name] = result.get(name, 0.0) + child[-1] - node[-1]
                node = child
        return bias, result

    def to_json(self) -> dict[str, Any]:
        return {"format": "cipulse-trees/1", "feature_names": list(self.feature_names), "trees": self.trees}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeEnsemble:
        if data.get("format") != "cipulse-trees/1":
            raise ModelFormatError(f"unknown tree format {data.get('format')!r}")
        names = tuple(str(name) for name in data["feature_names"])
        trees = tuple(tuple(tuple(float(v) for v in node) for node in tree) for tree in data["trees"])
        for tree in trees:
            for node in tree:
                if len(node) not in (1, 7):
                    raise ModelFormatError("a tree node must have 1 (leaf) or 7 (split) fields")
                if len(node) == 7 and not (
                    0 <= node[0] < len(names) and node[4] < len(tree) and node[5] < len(tree)
                ):
                    raise ModelFormatError("a split refers to a missing feature or node")
        return cls(names, trees)


def _child(node: tuple[float, ...], row: list[float | None]) -> int:
    feature, threshold, default_left, missing, left, right, _ = node
    value = row[int(feature)]
    if value is None or math.isnan(value):
        if missing == _MISSING_NAN:
            return int(left if default_left else right)
        value = 0.0
    if missing == _MISSING_ZERO and abs(value) <= _ZERO:
        return int(left if default_left else right)
    return int(left if value <= threshold else right)


def _leaf(tree: tuple[tuple[float, ...], ...], row: list[float | None]) -> int:
    index = 0
    while len(tree[index]) > 1:
        index = _child(tree[index], row)
    return index


def from_lightgbm_dump(dump: dict[str, Any]) -> TreeEnsemble:
    """Convert `Booster.dump_model()` of a binary numerical-feature model."""
    if dump.get("num_tree_per_iteration", 1) != 1 or not str(dump.get("objective", "")).startswith("binary"):
        raise ModelFormatError("only binary LightGBM models are supported")
    if "sigmoid:1" not in str(dump.get("objective")):
        raise ModelFormatError(f"unsupported sigmoid in objective {dump.get('objective')!r}")
    trees = []
    for info in dump["tree_info"]:
        nodes: list[tuple[float, ...]] = []

        def add(node: dict[str, Any], nodes: list[tuple[float, ...]] = nodes) -> int:
            index = len(nodes)
            if "leaf_value" in node or "split_feature" not in node:
                nodes.append((float(node.get("leaf_value", 0.0)),))
                return index
            if node.get("decision_type") != "<=":
                raise ModelFormatError("categorical splits are not supported")
            nodes.append(())
            left = add(node["left_child"])
            right = add(node["right_child"])
            nodes[index] = (
                float(node["split_feature"]),
                float(node["threshold"]),
                1.0 if node["default_left"] else 0.0,
                float(_MISSING_CODES[node["missing_type"]]),
                float(left),
                float(right),
                float(node["internal_value"]),
            )
            return index

        add(info["tree_structure"])
        trees.append(tuple(nodes))
    return TreeEnsemble(tuple(dump["feature_names"]), tuple(trees))


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)
