"""Benchmarks of Sluiceway: ``./benchmarks/run.sh`` runs :mod:`benchmarks.compare`."""
