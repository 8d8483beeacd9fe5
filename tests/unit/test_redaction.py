"""Credentials never show in what the server says: URLs, storage errors, job logs."""

from __future__ import annotations

import pytest

from sluiceway.storage.redaction import describe_error, redact_text, redact_url


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "GET https://a.blob.core.windows.net/c/x?sv=2022&sig=abc%2Bdef%3D&se=1 failed",
            "abc%2Bdef",
        ),
        ("'https://b.s3.amazonaws.com/k?X-Amz-Signature=ff00&X-Amz-Credential=AKIA'", "ff00"),
        ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0==;", "c2VjcmV0"),
        ("BlobEndpoint=http://x;SharedAccessSignature=sv=1&sig=zz99;", "zz99"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "eyJhbGci"),
        ("Authorization: SharedKey acct:c2lnbmF0dXJlMTIz", "c2lnbmF0dXJlMTIz"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
        ("client_secret='s3cr3t-value'", "s3cr3t-value"),
    ],
)
def test_credentials_in_messages_are_hidden(text: str, secret: str) -> None:
    shown = redact_text(text)
    assert secret not in shown and "REDACTED" in shown


def test_known_secrets_are_hidden_wherever_they_are() -> None:
    assert redact_text("key is hunter22 here", ("hunter22",)) == "key is REDACTED here"


def test_plain_messages_are_unchanged() -> None:
    text = "The path 'a/../b' is not accepted: it has a '..' segment (sv=2022 is fine)."
    assert redact_text(text) == text


def test_errors_are_described_without_credentials() -> None:
    exc = OSError("403 for https://a.blob.core.windows.net/c?sig=SECRET")
    assert describe_error(exc) == "OSError: 403 for https://a.blob.core.windows.net/c?sig=REDACTED"
    assert describe_error(ValueError()) == "ValueError"


def test_urls_keep_everything_but_their_credentials() -> None:
    url = "https://a.blob.core.windows.net/c/d/?sv=2022-11-02&sig=abc&se=2030"
    assert (
        redact_url(url) == "https://a.blob.core.windows.net/c/d/?sv=2022-11-02&sig=REDACTED&se=2030"
    )
    assert redact_url("azureml:heart:1") == "azureml:heart:1"
