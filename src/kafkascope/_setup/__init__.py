"""Installing providers, exporters and log handlers."""
