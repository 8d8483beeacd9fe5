"""The Azure ML dialect: what the unmodified azure-ai-ml SDK (and azure-identity) send, over
the same services as the REST routes.

- :mod:`.identity`: cloud metadata, managed-identity and ADFS-style token endpoints.
- :mod:`.management`: the ARM routes under ``/subscriptions/.../workspaces/{ws}``.
- :mod:`.dataplane`: discovery, run history, resolved URIs, list_jobs, log links.
- :mod:`.blob`: the blob-service face over local and S3 datastores.
- :mod:`.shapes`: the ARM JSON of each resource.
"""
