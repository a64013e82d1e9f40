"""Collecting GitHub Actions history: GraphQL first, REST where GraphQL has gaps, webhooks when configured."""
