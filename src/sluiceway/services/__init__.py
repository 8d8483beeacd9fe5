"""Domain rules. Services know nothing of HTTP; routers call them, they call the stores."""
