"""Estimates a GraphQL query's node count and point cost from its AST and variables, before sending it.

GitHub's rules: every connection is assumed to return its full `first`/`last` page; the node count is the
sum over connections of the product of page sizes along the path (limit 500,000, which schema validation
does not catch), and the cost is the number of connection requests needed divided by 100, rounded, at
least 1. `nodes(ids: [...])` multiplies whatever is nested under it by the number of ids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)

GITHUB_NODE_LIMIT = 500_000
PAGE_SIZE_ARGUMENTS = ("first", "last")
LIST_MULTIPLYING_ARGUMENTS = ("ids",)


@dataclass(frozen=True, slots=True)
class QueryEstimate:
    nodes: int
    requests: int

    @property
    def cost(self) -> int:
        """Points GitHub will charge: requests / 100 rounded half up, never below 1."""
        return max(1, math.floor(self.requests / 100 + 0.5))


def estimate_query(document: DocumentNode, variables: Mapping[str, Any] | None = None) -> QueryEstimate:
    """Node count and point cost of the document's (single) operation for these variables."""
    variables = dict(variables or {})
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise ValueError("estimate_query expects exactly one operation per document")
    walker = _Walker(fragments, variables)
    walker.walk(operations[0].selection_set, multiplier=1, seen=frozenset())
    return QueryEstimate(nodes=walker.nodes, requests=walker.requests)


class _Walker:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]) -> None:
        self.fragments = fragments
        self.variables = variables
        self.nodes = 0
        self.requests = 0

    def argument(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def walk(self, selection_set: SelectionSetNode | None, multiplier: int, seen: frozenset[str]) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.walk_field(selection, multiplier, seen)
            elif isinstance(selection, InlineFragmentNode):
                self.walk(selection.selection_set, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen:
                    raise ValueError(f"fragment {name!r} spreads itself")
                self.walk(self.fragments[name].selection_set, multiplier, seen | {name})

    def walk_field(self, field: FieldNode, multiplier: int, seen: frozenset[str]) -> None:
        page_size = next(
            (int(s) for s in (self.argument(field, a) for a in PAGE_SIZE_ARGUMENTS) if s is not None), None
        )
        if page_size is not None:
            self.requests += multiplier
            self.nodes += multiplier * page_size
            self.walk(field.selection_set, multiplier * page_size, seen)
            return
        for name in LIST_MULTIPLYING_ARGUMENTS:
            values = self.argument(field, name)
            if isinstance(values, list):
                self.walk(field.selection_set, multiplier * max(1, len(values)), seen)
                return
        self.walk(field.selection_set, multiplier, seen)
