"""Where data lives: references, datastores and the filesystems behind them."""
