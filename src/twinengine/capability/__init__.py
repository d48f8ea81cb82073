"""The capability engine: durable workflows, model router, tagging, content drop, dubbing, assistant."""
