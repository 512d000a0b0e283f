"""Access: scopes, named tokens, the audit log, personal data (export, forget, retention)."""
