"""Model router: per-task routes over LLM providers, with cache, budgets and a cost ledger."""
