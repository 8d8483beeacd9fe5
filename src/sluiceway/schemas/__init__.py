"""Pydantic shapes at the edges: REST bodies, YAML files, show output.

The server and the SDK share these modules, so what one writes the other reads.
"""
