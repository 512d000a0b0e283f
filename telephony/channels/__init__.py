"""Client channels: one interface (`base.Channel`) with Telegram, WhatsApp Cloud API and SMS.ru as
implementations. A client has many channel identities; the dialog and the managers' topic stay one
per client."""
