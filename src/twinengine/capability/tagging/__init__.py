"""Auto-tagger: a local model tags what it is sure of; uncertain items escalate to an LLM."""
