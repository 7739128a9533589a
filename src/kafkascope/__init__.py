"""kafkascope."""
