"""Executors run mini-batches on worker processes: ``local`` here, ``ray`` on a cluster."""
