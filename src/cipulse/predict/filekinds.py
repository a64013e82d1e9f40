"""Classify changed paths into kinds: source, tests, CI config, dependency manifests, docs, other."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import PurePosixPath

SOURCE = "src"
TEST = "test"
CI = "ci"
DEPENDENCY = "dependency"
DOC = "doc"
OTHER = "other"

_DEPENDENCY_NAMES = frozenset(
    {
        "requirements.txt",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "pipfile",
        "pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.mod",
        "go.sum",
        "cargo.toml",
        "cargo.lock",
        "gemfile",
        "gemfile.lock",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "gradle.properties",
        "composer.json",
        "composer.lock",
        "mix.exs",
        "mix.lock",
        "*.gemspec",
    }
)
_CI_NAMES = frozenset({".travis.yml", ".gitlab-ci.yml", "jenkinsfile", "appveyor.yml", "azure-pipelines.yml"})
_DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".adoc", ".rdoc"})
_SOURCE_SUFFIXES = frozenset(
    {
        ".py",
        ".rb",
        ".java",
        ".kt",
        ".scala",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".php",
        ".swift",
        ".m",
        ".ex",
        ".exs",
        ".erl",
        ".clj",
        ".groovy",
        ".sh",
        ".sql",
    }
)


def classify_path(path: str) -> str:
    """The kind of one repository path (posix separators)."""
    pure = PurePosixPath(path.lower())
    name = pure.name
    parts = pure.parts
    if name in _CI_NAMES or path.lower().startswith((".github/workflows/", ".github/actions/", ".circleci/")):
        return CI
    if name in _DEPENDENCY_NAMES or name.endswith(".gemspec") or name.startswith("requirements"):
        return DEPENDENCY
    is_test_dir = any(
        part in {"test", "tests", "spec", "specs", "__tests__", "testing"} for part in parts[:-1]
    )
    is_test_name = name.startswith("test_") or any(
        marker in name for marker in ("_test.", ".test.", "_spec.", ".spec.", "test.java", "tests.")
    )
    if pure.suffix in _SOURCE_SUFFIXES and (is_test_dir or is_test_name):
        return TEST
    if pure.suffix in _DOC_SUFFIXES or "docs" in parts[:-1] or "doc" in parts[:-1]:
        return DOC
    if pure.suffix in _SOURCE_SUFFIXES:
        return SOURCE
    return OTHER


def count_kinds(paths: Iterable[str]) -> Counter[str]:
    """How many paths of each kind a change touches."""
    return Counter(classify_path(path) for path in paths)
