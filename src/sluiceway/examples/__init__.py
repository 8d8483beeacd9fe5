"""Bundled examples that ``sluice quickstart`` and the tests deploy."""
