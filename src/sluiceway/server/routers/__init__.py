"""HTTP routes, one module per resource. Routers only translate HTTP; services decide."""
