"""What every PBX provider shares: the errors a webhook parser and an API client raise."""

from __future__ import annotations


class InvalidPayload(ValueError):
    """A push is missing a field or has a wrong one; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PbxError(Exception):
    """The PBX refused a command or could not be reached; the message is the PBX's own."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
