"""The ``sluice`` command line: :func:`sluiceway.cli.main.main`, one module per command group."""
