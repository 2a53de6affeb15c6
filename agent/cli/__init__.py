"""Command-line tools. agentctl's hot path imports only the standard library."""
