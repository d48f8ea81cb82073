"""Learned ranking: point-in-time features, LambdaMART with CTR and CVR heads, position bias,
diversity rules, versioned artifacts and the serving-time ``rerank``."""
