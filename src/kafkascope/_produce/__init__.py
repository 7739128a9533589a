"""The send span and dead letters."""
