"""Which hosts the server may reach for a caller (``SLUICEWAY_ALLOW_PRIVATE_NETWORK``).

Only IP literals and ``localhost`` are used, so no test depends on outside DNS.
"""

from __future__ import annotations

import pytest

from sluiceway.errors import ValidationError
from sluiceway.storage.network import PrivateNetworkPolicy

PRIVATE = [
    ("http://127.0.0.1:5000/x", "a loopback"),
    ("http://127.1/x", "a loopback"),
    ("http://2130706433/x", "a loopback"),
    ("http://0177.0.0.1/x", "a loopback"),
    ("http://0x7f.0.0.1/x", "a loopback"),
    ("http://localhost/x", "a loopback"),
    ("http://[::1]/x", "a loopback"),
    ("http://[::ffff:127.0.0.1]/x", "a loopback"),
    ("http://0.0.0.0/x", "an unspecified"),
    ("http://[::]/x", "an unspecified"),
    ("http://10.1.2.3/x", "a private"),
    ("http://172.16.0.1/x", "a private"),
    ("http://192.168.0.1/x", "a private"),
    ("http://[fd12::1]/x", "a private"),
    ("http://169.254.1.1/x", "a link-local"),
    ("http://[fe80::1]/x", "a link-local"),
    ("http://100.64.0.1/x", "a reserved"),
    ("http://224.0.0.1/x", "a multicast"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata"),
    ("http://100.100.100.200/", "a cloud metadata"),
    ("http://[fd00:ec2::254]/", "a cloud metadata"),
]


@pytest.mark.parametrize(("url", "kind"), PRIVATE)
def test_private_addresses_are_refused_by_default(url: str, kind: str) -> None:
    with pytest.raises(ValidationError, match="SLUICEWAY_ALLOW_PRIVATE_NETWORK") as info:
        PrivateNetworkPolicy().check_url(url, what="Input 'x'", target="x")
    assert f"{kind} address" in info.value.message
    assert repr(url) in info.value.message and info.value.target == "x"


@pytest.mark.parametrize("host", ["metadata.google.internal", "metadata", "instance-data"])
def test_metadata_host_names_are_refused_even_when_they_do_not_resolve(host: str) -> None:
    for policy in (PrivateNetworkPolicy(), PrivateNetworkPolicy.parse("true")):
        with pytest.raises(ValidationError, match="cloud metadata service"):
            policy.check_url(f"http://{host}/computeMetadata/v1/", what="x")
    PrivateNetworkPolicy.parse(host).check_url(f"http://{host}/", what="x")


def test_public_and_unresolvable_hosts_are_let_through() -> None:
    policy = PrivateNetworkPolicy()
    for url in (
        "https://8.8.8.8/x",
        "https://[2001:4860:4860::8888]/x",
        "https://no-such.invalid/",
    ):
        policy.check_url(url, what="x")
    policy.check_url("not a url", what="x")  # no host: other checks say what is wrong


def test_true_allows_private_addresses_but_not_metadata() -> None:
    policy = PrivateNetworkPolicy.parse("TRUE")
    for url in ("http://127.0.0.1/", "http://10.0.0.1/", "http://[::1]/", "http://169.254.1.1/"):
        policy.check_url(url, what="x")
    with pytest.raises(ValidationError, match=r"names 169\.254\.169\.254"):
        policy.check_url("http://169.254.169.254/", what="x")


def test_lists_allow_exactly_their_hosts_and_networks() -> None:
    policy = PrivateNetworkPolicy.parse(" 10.0.0.0/8, [::1], minio ,169.254.169.254")
    for url in ("http://10.200.0.1/", "http://[::1]:9000/", "http://minio:9000/b",
                "http://169.254.169.254/"):  # fmt: skip
        policy.check_url(url, what="x")
    for url in ("http://127.0.0.1/", "http://192.168.0.1/", "http://localhost/"):
        with pytest.raises(ValidationError):
            policy.check_url(url, what="x")


def test_operator_endpoints_are_allowed_by_host_and_port() -> None:
    policy = PrivateNetworkPolicy().with_endpoints(["http://127.0.0.1:10000"])
    policy.check_url("http://127.0.0.1:10000/devstoreaccount1/c/x", what="x")
    with pytest.raises(ValidationError):
        policy.check_url("http://127.0.0.1:10001/devstoreaccount1/c/x", what="x")


@pytest.mark.parametrize("value", ["", "false", "no", "0", "off"])
def test_false_allows_nothing(value: str) -> None:
    with pytest.raises(ValidationError):
        PrivateNetworkPolicy.parse(value).check_url("http://127.0.0.1/", what="x")


@pytest.mark.parametrize("value", ["10.0.0.0/33", "bad host!", "http://x", "a,,b_c"])
def test_bad_settings_name_the_entry(value: str) -> None:
    with pytest.raises(ValueError, match="SLUICEWAY_ALLOW_PRIVATE_NETWORK"):
        PrivateNetworkPolicy.parse(value)


def test_a_sas_in_a_refused_url_is_not_repeated() -> None:
    with pytest.raises(ValidationError) as info:
        PrivateNetworkPolicy().check_url("http://127.0.0.1/c/x?sv=1&sig=TOPSECRET", what="x")
    assert "TOPSECRET" not in info.value.message and "sig=REDACTED" in info.value.message
