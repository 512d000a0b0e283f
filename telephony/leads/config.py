"""The `[leads]` section of `trubka.toml`: lead rules, Roistat templates, Metrika, the outbox."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telephony.phones import InvalidPhone, normalize_phone


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _phones(values: list[str]) -> list[str]:
    normalized = []
    for value in values:
        try:
            normalized.append(normalize_phone(value))
        except InvalidPhone as exc:
            raise ValueError(f"not a phone number: {value!r} ({exc})") from None
    return normalized


class RoistatTemplates(_Section):
    """What `leads/add` carries; templates use Roistat's variable names."""

    title: str = "Звонок с сайта {caller}"
    comment: str = (
        "Звонок {callDate}, {status}, разговор {talkDuration} с. "
        "Менеджер: {manager}. Запись: {recordLink}"
    )
    form_title: str = "Заявка с сайта {phone}"
    form_comment: str = "{comment}"
    order_creation_method: str = "Звонок"
    form_order_creation_method: str = "Заявка с сайта"
    fields: dict[str, str] = Field(default_factory=dict)
    client_fields: dict[str, str] = Field(default_factory=dict)
    # Roistat's duplicate checks (see apis/roistat.md).
    is_need_check_order_in_processing: bool = True
    is_need_check_order_in_processing_append: bool = True
    is_skip_sending: bool = False
    sync: bool = False
    # messages/add when the recording or the final status arrives after the lead was sent.
    append_updates: bool = True
    message_title: str = "Звонок {status}"
    message: str = "Статус: {status}, разговор {talkDuration} с. Запись: {recordLink}"
    timeout: float = Field(default=10.0, gt=0)


class MetrikaOptions(_Section):
    # "calls": every inbound call with a visitor id (Metrika builds its own goals);
    # "leads": only calls that became leads.
    calls: Literal["calls", "leads"] = "calls"
    tag: str = "{utmSource}"
    new_goal_name: str = "Звонок"
    comment: str = "trubka"
    timeout: float = Field(default=30.0, gt=0)
    # Poll an uploading's status this long at most.
    status_poll_hours: float = Field(default=48.0, gt=0)


class OutboxOptions(_Section):
    base_delay: float = Field(default=10.0, gt=0, description="seconds before the first retry")
    max_delay: float = Field(default=1800.0, gt=0, description="cap of one wait (Roistat: 30 min)")
    give_up_after_hours: float = Field(default=48.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=20, ge=1, le=1000)


class LeadsConfig(_Section):
    # Which calls become leads.
    calls: bool = True
    forms: bool = True
    create_on: Literal["end", "start"] = "end"
    first_time_only: bool = True
    first_time_window_days: int = Field(default=0, ge=0, description="0 = ever")
    targeted_only: bool = False
    targeted_seconds: int = Field(default=30, ge=0)
    include_missed: bool = True
    skip_internal: bool = True
    skip_numbers: list[str] = Field(default_factory=list)
    tracking_numbers_only: bool = False
    tracking_numbers: list[str] = Field(default_factory=list)
    # Form leads' attribution is reused for the same client's calls this long (no call tracking).
    form_attribution_days: int = Field(default=30, ge=0)
    # Run the outbox worker and the Metrika batches in this process (`serve`).
    workers: bool = True
    roistat: RoistatTemplates = Field(default_factory=RoistatTemplates)
    metrika: MetrikaOptions = Field(default_factory=MetrikaOptions)
    outbox: OutboxOptions = Field(default_factory=OutboxOptions)

    @field_validator("skip_numbers", "tracking_numbers")
    @classmethod
    def _normalized(cls, values: list[str]) -> list[str]:
        return _phones(values)

    @model_validator(mode="after")
    def _consistent(self) -> LeadsConfig:
        if self.create_on == "start" and (self.targeted_only or not self.include_missed):
            raise ValueError(
                "create_on = 'start' decides before the talk: it cannot be combined with "
                "targeted_only or include_missed = false"
            )
        return self
