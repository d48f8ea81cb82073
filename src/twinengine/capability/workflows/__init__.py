"""Durable workflows on DBOS: the runtime, run listings, the worker."""
