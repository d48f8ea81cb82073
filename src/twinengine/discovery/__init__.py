"""The revenue engine: retrieval, candidates, ranking, events, experiments, evaluation."""
