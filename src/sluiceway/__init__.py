"""Sluiceway."""
