"""The test kit behind :mod:`kafkascope.testing`: fake records and the pytest hooks."""
