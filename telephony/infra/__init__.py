"""Shared plumbing of the domain: the base HTTP client, the worker runner, the rate limiter, the
clock, health checks and the no-network-in-a-transaction guard."""
