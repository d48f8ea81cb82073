"""The catalog: items, facets, topics, item-topic links, users; and ingest."""
