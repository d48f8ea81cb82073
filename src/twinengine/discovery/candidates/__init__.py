"""Candidate generators: popular, trending, fresh, topic affinity, co-occurrence, neighbours, CF."""
