"""A GitHub emulator: GraphQL on GitHub's published schema, REST and webhooks in GitHub's published
shapes, rate limits and injectable faults, over a seeded CI history. Used by tests, benchmarks and demos."""

from cipulse.emulator.server import Emulator

__all__ = ["Emulator"]
