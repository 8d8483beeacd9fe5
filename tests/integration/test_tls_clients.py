"""Sluiceway's own SDK and ``sluice`` against a server serving HTTPS with its self-signed
certificate: the home's own server is trusted by itself; another server's bundle is taken from
``ca_bundle=``/``--ca-bundle``, ``$SLUICEWAY_CA_BUNDLE`` or ``$REQUESTS_CA_BUNDLE``; without one
the certificate is refused with a message that names them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluiceway import MLClient
from sluiceway.errors import ServerUnavailableError, ValidationError
from tests.integration.conftest import RunningServer, stop_server
from tests.integration.tls_server import ca_bundle, start_tls_server

TRUST_VARIABLES = ("SLUICEWAY_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_tls_server(tmp_path_factory.mktemp("tls-clients"))
    yield running
    stop_server(running)


@pytest.fixture
def no_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*TRUST_VARIABLES, "SLUICEWAY_ENDPOINT", "SLUICEWAY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def names(client: MLClient) -> list[str | None]:
    with client:
        return [e.name for e in client.batch_endpoints.list()]


@pytest.mark.usefixtures("no_trust")
def test_sdk_trusts_the_homes_server_and_a_bundle_given(
    tls_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert names(MLClient(home=tls_server.home)) == []  # found and trusted through the home
    elsewhere = tmp_path / "other-home"

    def remote(bundle: Path | None = None) -> MLClient:
        return MLClient(
            endpoint=tls_server.url, token=tls_server.token, home=elsewhere, ca_bundle=bundle
        )

    with pytest.raises(ServerUnavailableError, match=r"not trusted.*SLUICEWAY_CA_BUNDLE"):
        names(remote())
    bundle = ca_bundle(tls_server.home)
    assert names(remote(bundle)) == []
    for variable in TRUST_VARIABLES:
        monkeypatch.setenv(variable, str(bundle))
        assert names(remote()) == [], variable
        monkeypatch.delenv(variable)
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    with pytest.raises(ValidationError, match=r"bad\.pem"):
        remote(tmp_path / "bad.pem")


def sluice(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES}
    env["SLUICEWAY_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_trusts_the_homes_server_and_ca_bundle(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    assert sluice("batch-endpoint", "list", home=tls_server.home).returncode == 0
    remote = ["--endpoint", tls_server.url, "--token", tls_server.token]
    refused = sluice("batch-endpoint", "list", *remote, home=tmp_path)
    assert refused.returncode == 1 and "--ca-bundle" in refused.stderr, refused.stderr
    bundle = str(ca_bundle(tls_server.home))
    trusted = sluice("batch-endpoint", "list", *remote, "--ca-bundle", bundle, home=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
