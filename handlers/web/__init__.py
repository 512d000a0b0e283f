"""aiohttp edges: telephony webhooks, the API for scripts and sites, operations endpoints."""
