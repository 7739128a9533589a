"""What every layer shares: names, settings, errors, the message, providers, instruments."""
