"""`[tracking.widgets]`: the site widgets (a callback request, messenger links) and their budgets.

Off by default: `enabled = true` makes `/ct/tracker.js` load `/ct/widget.js` and opens
`POST /ct/v1/callback`. Texts are Russian by default; colours are CSS hex colours.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Colour = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WidgetTexts(_Strict):
    button: Text = "Перезвоните мне"
    title: Text = "Перезвоним за минуту"
    phone: Text = "Ваш телефон"
    name: Text = "Имя (необязательно)"
    submit: Text = "Жду звонка"
    close: Text = "Закрыть"
    calling: Text = "Перезваниваем…"
    # {at} is the promised time, as the visitor's browser writes it.
    scheduled: Text = "Сейчас нерабочее время. Перезвоним {at}"
    refused: Text = "Не получилось. Попробуйте позже или позвоните нам"
    bad_phone: Text = "Проверьте номер телефона"
    telegram: Text = "Написать в Telegram"
    whatsapp: Text = "Написать в WhatsApp"


class WidgetColours(_Strict):
    accent: Colour = "#1f6feb"  # the button and the form's submit
    text: Colour = "#ffffff"  # text on the accent colour
    background: Colour = "#ffffff"  # the form's panel
    foreground: Colour = "#1b1f24"  # text on the panel


class CallbackBudgets(_Strict):
    """Against callback bombing (using the company to ring a stranger's phone). 0 turns a budget
    off. Per address and network: token buckets on the same keys as `/ct/v1/visit` (the address,
    its /24 or /48). Per phone and per site: counters stored in the database, so they survive
    restarts and hold across processes."""

    requests_per_minute: int = Field(default=3, ge=0, le=10_000)  # per client address …
    burst: int = Field(default=3, ge=1, le=10_000)
    network_requests_per_minute: int = Field(default=10, ge=0, le=100_000)  # per network …
    network_burst: int = Field(default=10, ge=1, le=100_000)
    per_phone_per_day: int = Field(default=2, ge=0, le=1000)  # calls to one phone a day
    per_site_per_hour: int = Field(default=30, ge=0, le=100_000)  # callbacks a site asks an hour
    # The visit must have been seen (page view or ping) this recently.
    visit_max_age_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)


class WidgetsConfig(_Strict):
    enabled: bool = False
    callback: bool = True  # the callback button and form
    # The site's own forms marked with this attribute are sent as callback requests instead.
    form_attribute: str = Field(default="data-trubka-callback", pattern=r"^data-[a-z0-9-]{1,40}$")
    position: Literal["right", "left"] = "right"
    # Milliseconds after the page's load event before the widget's script is fetched.
    delay_ms: int = Field(default=1500, ge=0, le=60_000)
    # The country whose numbering plan a callback phone must belong to (mobile or landline).
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=lambda: ["RU"], min_length=1
    )
    # Telegram bot's user name (without @) for "Написать в Telegram"; none: no button.
    telegram_bot: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
    # WhatsApp number for "Написать в WhatsApp" (the text carries the visit's code); none: off.
    whatsapp_number: str | None = Field(default=None, pattern=r"^\+?[0-9]{10,15}$")
    texts: WidgetTexts = Field(default_factory=WidgetTexts)
    colours: WidgetColours = Field(default_factory=WidgetColours)
    budgets: CallbackBudgets = Field(default_factory=CallbackBudgets)
