"""The capability engine: workflows, model router, tagging, content drop, dubbing, assistant."""
