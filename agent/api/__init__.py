"""The agent's HTTP API: one aiohttp app served on the unix socket and (once enrolled) on mTLS."""
