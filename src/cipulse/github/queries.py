"""Loads the `.graphql` files shipped in `graphql/` into ready-to-send documents.

Fragments live once in `fragments.graphql`; each query gets exactly the fragments it spreads (GraphQL
rejects unused fragments), so the files stay small and every query validates on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from graphql import DocumentNode, FragmentDefinitionNode, FragmentSpreadNode, parse, print_ast, visit
from graphql.language import Visitor

FRAGMENTS_FILE = "fragments.graphql"


@dataclass(frozen=True, slots=True)
class Query:
    """A query ready to send: its text (fragments included) and its parsed form for cost estimation."""

    name: str
    text: str
    document: DocumentNode


def query_names() -> list[str]:
    """Every query file (without the fragments file), by file stem."""
    folder = resources.files("cipulse.github").joinpath("graphql")
    return sorted(
        entry.name.removesuffix(".graphql")
        for entry in folder.iterdir()
        if entry.name.endswith(".graphql") and entry.name != FRAGMENTS_FILE
    )


def _read(file_name: str) -> str:
    return resources.files("cipulse.github").joinpath("graphql", file_name).read_text(encoding="utf-8")


class _SpreadCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: object) -> None:
        self.names.add(node.name.value)


def _spread_names(node: object) -> set[str]:
    collector = _SpreadCollector()
    visit(node, collector)  # type: ignore[arg-type]
    return collector.names


@cache
def _fragments() -> dict[str, FragmentDefinitionNode]:
    document = parse(_read(FRAGMENTS_FILE))
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


@cache
def load_query(name: str) -> Query:
    """The named query with the fragments it needs (directly or through other fragments)."""
    body = _read(f"{name}.graphql")
    available = _fragments()
    needed: set[str] = set()
    pending = _spread_names(parse(body))
    while pending:
        fragment = pending.pop()
        if fragment in needed:
            continue
        if fragment not in available:
            raise KeyError(f"query {name!r} uses unknown fragment {fragment!r}")
        needed.add(fragment)
        pending |= _spread_names(available[fragment])
    text = "\n\n".join([body.strip(), *(print_ast(available[f]) for f in sorted(needed))]) + "\n"
    return Query(name=name, text=text, document=parse(text))
