"""GraphQL on GitHub's published schema (graphql-core 3.2 `build_client_schema`), with resolvers attached
to the built schema's root fields and abstract types; object fields resolve from graph_nodes attributes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    execute_sync,
    is_abstract_type,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from cipulse.emulator.cost import QueryCost, QueryCostError, measure
from cipulse.emulator.fast_execution import FastLeafExecutionContext
from cipulse.emulator.graph_nodes import NodeFactory, RepositoryNode
from cipulse.emulator.ids import parse_node_id
from cipulse.emulator.ratelimit import Bucket
from cipulse.emulator.state import World


@dataclass
class GraphQLContext:
    world: World
    nodes: NodeFactory
    cost: QueryCost
    bucket: Bucket


def _resolve_type(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    if isinstance(value, dict):
        name: str | None = value.get("__typename")
        return name
    return getattr(value, "typename", None)


def _resolve_node(root: Any, info: GraphQLResolveInfo, id: str) -> Any:
    parsed = parse_node_id(id)
    found = None if parsed is None else info.context.nodes.by_global_id(*parsed)
    if found is None:
        raise GraphQLError(
            f"Could not resolve to a node with the global id of '{id}'", extensions={"type": "NOT_FOUND"}
        )
    return found


def _resolve_nodes(root: Any, info: GraphQLResolveInfo, ids: list[str]) -> list[Any]:
    results: list[Any] = []
    for value in ids:
        try:
            results.append(_resolve_node(root, info, value))
        except GraphQLError as error:
            results.append(error)
    return results


def _resolve_repository(
    root: Any, info: GraphQLResolveInfo, owner: str, name: str, followRenames: bool = True
) -> RepositoryNode:
    repo = info.context.world.repo(f"{owner}/{name}")
    if repo is None:
        raise GraphQLError(
            f"Could not resolve to a Repository with the name '{owner}/{name}'.",
            extensions={"type": "NOT_FOUND"},
        )
    return RepositoryNode(repo, info.context.nodes.html_base)


def _resolve_rate_limit(root: Any, info: GraphQLResolveInfo, dryRun: bool = False) -> dict[str, Any]:
    context: GraphQLContext = info.context
    bucket = context.bucket
    return {
        "cost": context.cost.points,
        "limit": bucket.limit,
        "nodeCount": context.cost.nodes,
        "remaining": bucket.remaining,
        "resetAt": datetime.fromtimestamp(bucket.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "used": bucket.used,
    }


@lru_cache(maxsize=4)
def load_schema(path: Path) -> GraphQLSchema:
    """GitHub's schema with the emulator's resolvers attached (built once per process)."""
    introspection = json.loads(path.read_text())
    schema = build_client_schema(introspection.get("data", introspection))
    query = schema.query_type
    assert query is not None
    query.fields["node"].resolve = _resolve_node
    query.fields["nodes"].resolve = _resolve_nodes
    query.fields["repository"].resolve = _resolve_repository
    query.fields["rateLimit"].resolve = _resolve_rate_limit
    for graphql_type in schema.type_map.values():
        if is_abstract_type(graphql_type):
            graphql_type.resolve_type = _resolve_type  # type: ignore[attr-defined]
    return schema


class GraphQLRequestError(Exception):
    """A request refused before execution, answered with GitHub's `errors` shape."""

    def __init__(self, message: str, kind: str | None = None, status: int = 200) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": str(self)}
        if self.kind:
            error["type"] = self.kind
        return {"errors": [error]}


@lru_cache(maxsize=256)
def _parsed_and_validated(schema: GraphQLSchema, text: str) -> DocumentNode:
    """Parsing and validating against GitHub's large schema takes tens of milliseconds; clients send
    the same few query texts over and over, so each text is checked once."""
    try:
        document = parse(text)
    except GraphQLError as error:
        raise GraphQLRequestError(f"Parse error: {error.message}", "PARSE_ERROR") from None
    errors = validate(schema, document)
    if errors:
        raise GraphQLRequestError(errors[0].message, "VALIDATION_ERROR")
    return document


@dataclass
class PreparedQuery:
    document: DocumentNode
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    cost: QueryCost


def prepare(schema: GraphQLSchema, payload: Any) -> PreparedQuery:
    """Parses, validates and prices a request body. Raises GraphQLRequestError like GitHub would."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        raise GraphQLRequestError("A query attribute must be specified and must be a string.", status=400)
    document = _parsed_and_validated(schema, payload["query"])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    wanted = payload.get("operationName")
    if wanted:
        operations = [op for op in operations if op.name is not None and op.name.value == wanted]
    if len(operations) != 1:
        raise GraphQLRequestError("Exactly one operation must be selected (name it with operationName).")
    operation = operations[0]
    raw_variables = payload.get("variables") or {}
    if not isinstance(raw_variables, dict):
        raise GraphQLRequestError("Variables must be a JSON object.", status=400)
    coerced = get_variable_values(schema, operation.variable_definitions or (), raw_variables)
    if isinstance(coerced, list):
        raise GraphQLRequestError(coerced[0].message, "VALIDATION_ERROR")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    try:
        cost = measure(schema, operation, fragments, coerced)
    except QueryCostError as error:
        raise GraphQLRequestError(str(error), error.kind) from None
    return PreparedQuery(document, operation, raw_variables, cost)


def run_prepared(schema: GraphQLSchema, prepared: PreparedQuery, context: GraphQLContext) -> dict[str, Any]:
    result = execute_sync(
        schema,
        prepared.document,
        context_value=context,
        variable_values=prepared.variables,
        operation_name=prepared.operation.name.value if prepared.operation.name else None,
        execution_context_class=FastLeafExecutionContext,
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_github_error(error) for error in result.errors]
    return body


def _github_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = formatted.pop("extensions", None) or {}
    if "type" in extensions:
        formatted["type"] = extensions["type"]
    return formatted
