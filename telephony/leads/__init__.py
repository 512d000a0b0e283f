"""Leads: which calls and forms become leads, and their delivery to Roistat and Yandex Metrika
through a durable outbox (storage.leads_models.OutboxItem)."""
