"""graphql-core execution with a shortcut for plain leaf fields.

Most fields of a CI sync are scalars read straight off an object (a step's name, status, times). For
those graphql-core still builds resolve info, argument maps and paths per field, which dominates the
time of a 10,000-job sync. This context reads such fields directly and serializes them with the field's
own type; anything else (arguments, custom resolvers, objects, lists, nulls in non-null fields, errors)
takes graphql-core's normal path, so answers and errors are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    ExecutionContext,
    FieldNode,
    GraphQLObjectType,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Path, Undefined

# (serialize, non_null) for a plain leaf field, None when the field must take the normal path
_LeafPlan = tuple[Callable[[Any], Any], bool] | None
_PLANS: dict[tuple[str, str], _LeafPlan] = {}


def _plan(parent_type: GraphQLObjectType, name: str) -> _LeafPlan:
    key = (parent_type.name, name)
    if key in _PLANS:
        return _PLANS[key]
    field = parent_type.fields.get(name)
    plan: _LeafPlan = None
    if (
        field is not None
        and field.resolve is None
        and not field.args
        and is_leaf_type(get_nullable_type(field.type))
    ):
        plan = (get_nullable_type(field.type).serialize, is_non_null_type(field.type))
    _PLANS[key] = plan
    return plan


class FastLeafExecutionContext(ExecutionContext):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        fields: dict[str, list[FieldNode]],
    ) -> Any:
        results: dict[str, Any] = {}
        is_mapping = isinstance(source_value, Mapping)
        for response_name, field_nodes in fields.items():
            node = field_nodes[0]
            name = node.name.value
            plan = None if node.arguments else _plan(parent_type, name)
            if plan is not None:
                value = source_value.get(name) if is_mapping else getattr(source_value, name, None)
                if value is not None and not callable(value):
                    serialized = plan[0](value)
                    if serialized is not Undefined and serialized is not None:
                        results[response_name] = serialized
                        continue
                elif value is None and not plan[1]:
                    results[response_name] = None
                    continue
            result = self.execute_field(
                parent_type, source_value, field_nodes, Path(path, response_name, parent_type.name)
            )
            if result is not Undefined:
                results[response_name] = result
        return results
