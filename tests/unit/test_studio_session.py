"""The studio's session helpers: CSRF tokens, where sign-in may lead, one-time links."""

from __future__ import annotations

import time

from sluiceway.schemas.endpoints import BatchEndpointOut
from sluiceway.server.ui.consume import ConsumeInput, snippets
from sluiceway.server.ui.session import SignInLinks, csrf_for, safe_next


def test_a_csrf_token_belongs_to_one_session() -> None:
    assert csrf_for("token-a") == csrf_for("token-a")
    assert csrf_for("token-a") != csrf_for("token-b")
    assert "token-a" not in csrf_for("token-a")


def test_sign_in_leads_only_into_the_studio() -> None:
    assert safe_next("/ui/jobs/x?log=a") == "/ui/jobs/x?log=a"
    for outside in (None, "", "https://evil.example/ui", "//evil.example/ui", "/jobs", "/ui\\x"):
        assert safe_next(outside) == "/ui"


def test_a_sign_in_link_works_once_and_expires() -> None:
    links = SignInLinks(lifetime=0.2)
    code = links.issue("tok")
    assert links.redeem(code) == "tok"
    assert links.redeem(code) is None
    late = links.issue("tok")
    time.sleep(0.3)
    assert links.redeem(late) is None
    assert links.redeem("made-up") is None


def test_the_consume_snippets_name_the_endpoint_and_its_inputs() -> None:
    endpoint = BatchEndpointOut(
        id="/x", name="heart", scoring_uri="http://h:8765/endpoints/heart/jobs"
    )
    data = ConsumeInput("heart_dataset", "uri_folder", "azureml:heart-data@latest")
    mode = ConsumeInput("score_mode", "string", "append")
    model = snippets(endpoint, [data], model_deployment=True)
    assert "ENDPOINT_NAME=heart" in model.cli
    assert "--input azureml:heart-data@latest" in model.cli
    assert 'endpoint_name="heart"' in model.sdk
    assert model.rest.startswith("POST /endpoints/heart/jobs HTTP/1.1\nHost: h:8765\n")
    assert '"JobInputType": "UriFolder"' in model.rest
    pipeline = snippets(endpoint, [data, mode], model_deployment=False)
    assert "--input " not in pipeline.cli
    assert "inputs.score_mode.type string inputs.score_mode.default append" in pipeline.cli
    assert '"JobInputType": "Literal"' in pipeline.rest
    assert "http://h:8765/endpoints/heart/jobs" in pipeline.curl
