"""The documentation site's generated reference pages (run by MkDocs through ``hooks.py``)."""
