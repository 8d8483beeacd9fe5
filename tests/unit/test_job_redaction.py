"""Credentials in input URLs never show in the job resource."""

from __future__ import annotations

import pytest

from sluiceway.services.jobs import redact_url


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (
            "https://acct.blob.core.windows.net/c/data/?sv=2022-11-02&sig=abc%2Bdef%3D&se=2030",
            "https://acct.blob.core.windows.net/c/data/?sv=2022-11-02&sig=REDACTED&se=2030",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=ff&X-Amz-Credential=AK",
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED",
        ),
        ("azureml:heart:1", "azureml:heart:1"),
        (
            "azureml://datastores/workspaceblobstore/paths/a/",
            "azureml://datastores/workspaceblobstore/paths/a/",
        ),
        (None, None),
    ],
)
def test_secrets_in_queries_are_hidden(given: str | None, shown: str | None) -> None:
    assert redact_url(given) == shown
