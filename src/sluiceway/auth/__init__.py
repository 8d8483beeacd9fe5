"""Identities, tokens and roles."""
