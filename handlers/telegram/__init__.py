"""aiogram routers: the managers' forum supergroup, manager commands and clients' private chats."""
