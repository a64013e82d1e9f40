"""Shared pytest configuration: real-service fixtures live in tests/services/."""

pytest_plugins = [
    "tests.services.kube",
    "tests.services.search",
    "tests.services.github_fixtures",
]
