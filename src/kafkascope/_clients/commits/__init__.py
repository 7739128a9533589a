"""Commit spans for each client: wrapping its ``commit()`` and reaching its auto-commits."""
