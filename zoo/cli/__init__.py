"""Command-line interface (``zoo``)."""
