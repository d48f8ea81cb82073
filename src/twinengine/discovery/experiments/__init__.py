"""Experiments: A/B tests and team-draft interleaving that decide ship or roll back."""
