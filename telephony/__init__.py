"""The domain: phones, clients, calls and providers, free of web and bot frameworks."""
