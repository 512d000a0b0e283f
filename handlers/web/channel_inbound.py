"""The app key under which the channel webhooks (WhatsApp, SMS.ru) find what to hand their parsed
bodies to: the domain's `ChannelInbound` (set by the channels' wiring)."""

from __future__ import annotations

from aiohttp import web

from telephony.channels.base import ChannelInbound

CHANNEL_INBOUND = web.AppKey("channel_inbound", ChannelInbound)
