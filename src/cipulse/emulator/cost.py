"""GitHub's GraphQL cost rules, applied to a validated query before it runs.

- Every connection needs `first` or `last` between 1 and 100.
- Node count: a connection asking for n items under parents that may number p contributes n * p nodes;
  more than 500,000 in one query is refused (GitHub: MAX_NODE_LIMIT_EXCEEDED).
- Rate-limit cost: the number of requests needed to fill every connection (p per connection), divided by
  100 and rounded, at least 1 point.
A list argument such as `nodes(ids: [...])` multiplies what is below it by its length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_interface_type,
    is_object_type,
)
from graphql.execution.values import get_argument_values

MAX_NODES = 500_000
MAX_PAGE = 100


class QueryCostError(Exception):
    """The query breaks a GitHub limit; `kind` is the error type GitHub reports."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class QueryCost:
    requests: int = 0
    nodes: int = 0
    connections: list[str] = field(default_factory=list)

    @property
    def points(self) -> int:
        """requests / 100 rounded half up, at least 1."""
        return max(1, (self.requests + 50) // 100)


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> QueryCost:
    """Cost and node count of `operation` (variables already coerced). Raises QueryCostError."""
    cost = QueryCost()
    root = schema.get_root_type(operation.operation)
    if root is not None:
        _walk(schema, root, operation.selection_set, fragments, variables, 1, cost)
    if cost.nodes > MAX_NODES:
        raise QueryCostError(
            "MAX_NODE_LIMIT_EXCEEDED",
            f"This query requests up to {cost.nodes:,} possible nodes which exceeds the maximum limit of "
            f"{MAX_NODES:,}.",
        )
    return cost


def _walk(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    multiplier: int,
    cost: QueryCost,
) -> None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            _field(schema, parent, selection, fragments, variables, multiplier, cost)
        elif isinstance(selection, InlineFragmentNode):
            target = parent
            if selection.type_condition is not None:
                target = schema.get_type(selection.type_condition.name.value) or parent
            _walk(schema, target, selection.selection_set, fragments, variables, multiplier, cost)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                target = schema.get_type(fragment.type_condition.name.value) or parent
                _walk(schema, target, fragment.selection_set, fragments, variables, multiplier, cost)


def _field(
    schema: GraphQLSchema,
    parent: Any,
    node: FieldNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    multiplier: int,
    cost: QueryCost,
) -> None:
    if node.selection_set is None or not (is_object_type(parent) or is_interface_type(parent)):
        return
    field_def = parent.fields.get(node.name.value)
    if field_def is None:
        return
    child_type = get_named_type(field_def.type)
    args = get_argument_values(field_def, node, variables)
    child_multiplier = multiplier
    name = node.name.value
    if _is_connection(child_type):
        first, last = args.get("first"), args.get("last")
        if first is None and last is None:
            raise QueryCostError(
                "MISSING_PAGINATION_BOUNDARIES",
                f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
            )
        for label, value in (("first", first), ("last", last)):
            if value is not None and (value < 0 or value > MAX_PAGE):
                raise QueryCostError(
                    "EXCESSIVE_PAGINATION",
                    f"Requesting {value} records on the `{name}` connection exceeds the `{label}` limit of "
                    f"{MAX_PAGE} records.",
                )
        page = max(first or 0, last or 0)
        cost.requests += multiplier
        cost.nodes += multiplier * page
        cost.connections.append(name)
        child_multiplier = multiplier * max(page, 1)
    else:
        for value in args.values():
            if isinstance(value, list):
                child_multiplier = multiplier * max(1, len(value))
    _walk(schema, child_type, node.selection_set, fragments, variables, child_multiplier, cost)


def _is_connection(graphql_type: Any) -> bool:
    return isinstance(graphql_type, GraphQLObjectType) and graphql_type.name.endswith("Connection")
