"""PBX providers: each parses its own webhooks and speaks its own API; both feed one call model."""
