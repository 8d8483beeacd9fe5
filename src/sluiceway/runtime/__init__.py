"""Code that runs inside workers; it imports nothing of the server."""
