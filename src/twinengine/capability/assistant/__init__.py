"""The prompt assistant: understand a brief, retrieve catalog prompts, compose a new one."""
