"""Watching consumers from inside the service: lag, time lag, rebalances, health."""
