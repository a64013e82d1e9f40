"""Where collected records live: SQLite by default, Elasticsearch or OpenSearch at scale."""
