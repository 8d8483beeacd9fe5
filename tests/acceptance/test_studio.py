"""The studio in a real browser: Debian's Chromium driven by Playwright, against a real server.

A browser signs in with a token (and with a client id and secret, and through the one-time link
of ``sluice studio``); the endpoint page shows the name and the REST URI that ``sluice
batch-endpoint show`` prints, and its copy button copies it; a job invoked from the CLI is
watched to Completed on its page without a reload; a running job is canceled from its page; a
reader sees no Cancel button and a forged POST without the CSRF token is refused; a signed-out
browser is sent to sign in; no request leaves the server's origin. Pages are also checked on a
phone's width and by keyboard. Every page visited is saved as a screenshot under
``test-artifacts/studio/`` (``SLUICEWAY_TEST_ARTIFACTS`` moves the folder).

Chromium is ``/usr/bin/chromium`` (``scripts/test.sh`` installs it); without it these tests skip,
and fail when ``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import service_missing
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    grant_role,
    invoke_body,
    new_user,
    put_file,
    wait_for_job,
)

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SLUICEWAY_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "studio"
ENDPOINT, DEPLOYMENT = "studio-alpha", "blue"
PHONE = {"width": 375, "height": 740}

# Each file takes a moment, so a job's progress can be watched; "slow" holds its mini-batch.
SCRIPT = """\
import os
import time

def init():
    pass

def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path) as fh:
            value = fh.read().strip()
        time.sleep(300 if value == "slow" else 0.4)
        rows.append(f"{os.path.basename(path)} {value}")
    return rows
"""

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@dataclass
class Studio:
    server: RunningServer
    owner: httpx.Client
    reader_token: str
    client_id: str
    client_secret: str
    browser: Any

    @property
    def url(self) -> str:
        return self.server.url

    def invoke(self, folder: str) -> str:
        body = invoke_body(
            {
                "data": {
                    "JobInputType": "UriFolder",
                    "Uri": f"azureml://datastores/workspaceblobstore/paths/{folder}/",
                }
            }
        )
        r = self.owner.post(f"/endpoints/{ENDPOINT}/jobs", json=body)
        assert r.status_code == 201, r.text
        name: str = r.json()["name"]
        return name

    def sluice(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sluiceway.cli.main", *args],
            env=self.server.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"Chromium ({CHROMIUM})")
    root = tmp_path_factory.mktemp("studio")
    server = start_server(root / "home")
    owner = server.client()
    playwright = sync_api.sync_playwright().start()
    browser = None
    try:
        create_script_deployment(
            owner, root, ENDPOINT, DEPLOYMENT, script=SCRIPT, settings={"mini_batch_size": 2}
        )
        owner.patch(
            f"/batch-endpoints/{ENDPOINT}",
            json={"description": "scores heart data", "defaults": {"deployment_name": DEPLOYMENT}},
        ).raise_for_status()
        for i in range(10):
            put_file(owner, "workspaceblobstore", f"studio/in/file-{i:02d}.txt", f"value-{i}")
        put_file(owner, "workspaceblobstore", "studio/slow/file.txt", "slow")
        owner.post(
            "/data",
            json={
                "name": "studio-data",
                "type": "uri_folder",
                "path": "azureml://datastores/workspaceblobstore/paths/studio/in/",
            },
        ).raise_for_status()
        reader_token = new_user(owner, "rex", [("reader", "workspace")])
        r = owner.post("/identities", json={"name": "nightly", "kind": "service_principal"})
        assert r.status_code == 201, r.text
        principal = r.json()
        grant_role(owner, "nightly", "contributor", "workspace")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield Studio(
            server,
            owner,
            reader_token,
            principal["client_id"],
            principal["client_secret"],
            browser,
        )
    finally:
        if browser is not None:
            browser.close()
        playwright.stop()
        owner.close()
        stop_server(server)


@dataclass
class Tab:
    """A browser tab of its own context, which records every request it makes."""

    page: Any
    context: Any
    requests: list[str]
    studio: Studio

    def open(self, path: str) -> None:
        self.page.goto(self.studio.url + path)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def sign_in(self, token: str) -> None:
        self.open("/ui/sign-in")
        self.page.fill("#token", token)
        self.page.click("#sign-in-token")
        self.page.wait_for_url(re.compile(r".*/ui/jobs$"))


def _tab(studio: Studio, **options: Any) -> Tab:
    context = studio.browser.new_context(**options)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    return Tab(context.new_page(), context, requests, studio)


@pytest.fixture
def tab(studio: Studio) -> Iterator[Tab]:
    opened = _tab(studio)
    yield opened
    _close(opened)


def _close(opened: Tab) -> None:
    opened.context.close()
    # Nothing a page loads comes from anywhere but the server itself.
    elsewhere = [u for u in opened.requests if not u.startswith(opened.studio.url + "/")]
    assert not elsewhere, elsewhere


def _status(tab: Tab) -> str:
    text: str = tab.page.get_attribute("#job-live", "data-status")
    return text


# -- signing in -------------------------------------------------------------------------------


def test_a_signed_out_browser_is_sent_to_sign_in(tab: Tab) -> None:
    tab.open("/")
    assert tab.page.url.endswith("/ui/sign-in?next=/ui/jobs")
    tab.open("/ui/endpoints/" + ENDPOINT)
    assert "/ui/sign-in?next=/ui/endpoints/" in tab.page.url
    assert tab.page.is_visible("#token")
    tab.shot("sign-in")
    cookies = tab.context.cookies()
    assert not [c for c in cookies if c["name"] == "sluice_session"]


def test_sign_in_with_a_token_sets_a_strict_http_only_session(studio: Studio, tab: Tab) -> None:
    tab.sign_in(studio.server.token)
    assert tab.page.text_content("[data-testid=identity]") == "owner"
    (session,) = [c for c in tab.context.cookies() if c["name"] == "sluice_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["expires"] > time.time() + 300 * 86400  # the owner's token lives a year
    assert tab.page.evaluate("document.cookie") == ""  # no script can read it
    tab.shot("jobs")


def test_a_wrong_token_is_refused(tab: Tab) -> None:
    tab.open("/ui/sign-in")
    tab.page.fill("#token", "not-a-token")
    tab.page.click("#sign-in-token")
    assert "does not sign in" in tab.page.text_content("[role=alert]")
    tab.open("/ui/jobs")
    assert "/ui/sign-in" in tab.page.url


def test_sign_in_as_a_service_principal(studio: Studio, tab: Tab) -> None:
    tab.open("/ui/sign-in?next=/ui/endpoints")
    tab.page.fill("#client_id", studio.client_id)
    tab.page.fill("#client_secret", studio.client_secret)
    tab.page.click("#sign-in-client")
    tab.page.wait_for_url(re.compile(r".*/ui/endpoints$"))
    assert tab.page.text_content("[data-testid=identity]") == "nightly"


def test_sluice_studio_opens_a_one_time_link(studio: Studio, tab: Tab) -> None:
    link = studio.sluice("studio", "--no-browser").stdout.strip()
    assert link.startswith(f"{studio.url}/ui/sign-in/link?code=")
    tab.page.goto(link)
    tab.page.wait_for_url(re.compile(r".*/ui/jobs$"))
    assert tab.page.text_content("[data-testid=identity]") == "owner"
    other = _tab(studio)
    try:
        other.page.goto(link)  # used once already
        assert "was used or has expired" in other.page.text_content("[role=alert]")
    finally:
        _close(other)


# -- endpoints --------------------------------------------------------------------------------


def test_the_endpoint_page_copies_the_rest_uri_the_cli_shows(studio: Studio, tab: Tab) -> None:
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=studio.url)
    tab.sign_in(studio.server.token)
    tab.open("/ui/endpoints")
    assert tab.page.is_visible(f"a[href='/ui/endpoints/{ENDPOINT}']")
    tab.shot("endpoints")
    tab.page.click(f"a[href='/ui/endpoints/{ENDPOINT}']")
    assert tab.page.text_content("[data-testid=endpoint-name]") == ENDPOINT
    shown = json.loads(studio.sluice("batch-endpoint", "show", "-n", ENDPOINT).stdout)
    assert tab.page.text_content("[data-testid=rest-uri]") == shown["scoring_uri"]
    tab.page.click("#copy-rest-uri")
    expect(tab.page.locator("#copy-rest-uri")).to_have_text(re.compile("^Copied"))
    assert tab.page.evaluate("navigator.clipboard.readText()") == shown["scoring_uri"]
    cli = tab.page.text_content("#snippet-cli")
    assert f"ENDPOINT_NAME={ENDPOINT}" in cli
    assert "sluice batch-endpoint invoke --name $ENDPOINT_NAME" in cli
    tab.page.click("#tab-rest")
    rest = tab.page.text_content("#snippet-rest")
    assert "Authorization: Bearer <TOKEN>" in rest and '"InputData"' in rest
    assert shown["scoring_uri"] in tab.page.text_content("#snippet-curl")
    tab.shot("endpoint")


# -- jobs -------------------------------------------------------------------------------------


def test_a_job_invoked_from_the_cli_is_watched_to_completed_without_a_reload(
    studio: Studio, tab: Tab
) -> None:
    tab.sign_in(studio.server.token)
    invoked = studio.sluice(
        "batch-endpoint",
        "invoke",
        "-n",
        ENDPOINT,
        "--input",
        "azureml://datastores/workspaceblobstore/paths/studio/in/",
    )
    job = json.loads(invoked.stdout)["name"]
    tab.open(f"/ui/jobs/{job}")
    tab.page.evaluate("window.__notReloaded = true")
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = _status(tab)
        value = tab.page.get_attribute("#progress-bar", "value")
        if not seen or seen[-1] != (status, value):
            seen.append((status, value))
            if status == "Running" and value not in (None, "0"):
                tab.shot("job-running")
        if status == "Completed":
            break
        time.sleep(0.2)
    assert seen[-1][0] == "Completed", seen
    assert seen[0][0] != "Completed", seen  # it was watched, not found done
    assert tab.page.evaluate("window.__notReloaded") is True
    bar = tab.page.locator("#progress-bar")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "5"
    assert "5 of 5 (100%)" in tab.page.text_content("[data-testid=progress-text]")
    # The status is a word and a symbol, not a colour alone.
    assert "✓ Completed" in tab.page.text_content("[data-testid=job-status]")
    tab.page.wait_for_selector("a[download]")
    assert "predictions.csv" in tab.page.text_content("ul.files")
    with tab.page.expect_download() as download:
        tab.page.click("a[download]")
    rows = Path(download.value.path()).read_text()
    assert "file-00.txt value-0" in rows
    expect(tab.page.locator("#log")).to_contain_text("mini-batches", timeout=10000)
    tab.shot("job-completed")
    # The job list shows it, and the Web View link the CLI prints opens this page.
    shown = studio.sluice("job", "show", "-n", job)
    assert f"Web View: {studio.url}/ui/jobs/{job}" in shown.stderr
    tab.page.goto(f"{studio.url}/ui/jobs/{job}")
    assert tab.page.url == f"{studio.url}/ui/jobs/{job}"
    tab.open(f"/ui/jobs?endpoint={ENDPOINT}")
    assert tab.page.is_visible(f"a[href='/ui/jobs/{job}']")


def test_a_running_job_is_canceled_from_its_page(studio: Studio, tab: Tab) -> None:
    job = studio.invoke("studio/slow")
    tab.sign_in(studio.server.token)
    tab.open(f"/ui/jobs/{job}")
    expect(tab.page.locator("#job-live")).to_have_attribute("data-status", "Running", timeout=60000)
    tab.shot("job-cancel-before")
    # By keyboard: the focused button keeps its focus while the progress around it updates.
    tab.page.focus("#cancel-job")
    tab.page.wait_for_timeout(2500)
    assert tab.page.evaluate("document.activeElement.id") == "cancel-job"
    tab.page.keyboard.press("Enter")
    expect(tab.page.locator("#job-live")).to_have_attribute(
        "data-status", "Canceled", timeout=60000
    )
    assert not tab.page.is_visible("#cancel-job")
    assert "⊘ Canceled" in tab.page.text_content("[data-testid=job-status]")
    tab.shot("job-canceled")
    assert studio.owner.get(f"/jobs/{job}").json()["status"] == "Canceled"


def test_a_reader_sees_no_cancel_and_a_forged_post_is_refused(studio: Studio, tab: Tab) -> None:
    job = studio.invoke("studio/slow")
    try:
        tab.sign_in(studio.reader_token)
        tab.open(f"/ui/jobs/{job}")
        assert tab.page.text_content("[data-testid=invoker]") == "owner"
        tab.page.wait_for_selector("#job-live")
        assert tab.page.locator("#cancel-job").count() == 0
        tab.shot("job-reader")
        # The owner's browser, with a valid session, posts without the form's CSRF token: refused.
        owner = _tab(studio)
        try:
            owner.sign_in(studio.server.token)
            forged = owner.page.request.post(
                f"{studio.url}/ui/jobs/{job}/cancel", form={"nothing": "here"}
            )
            assert forged.status == 403
            assert "CSRF" in forged.text()
            wrong = owner.page.request.post(
                f"{studio.url}/ui/jobs/{job}/cancel", form={"csrf": "0" * 64}
            )
            assert wrong.status == 403
            # The reader's own CSRF token does not make the service allow a cancel either.
            csrf = tab.page.get_attribute("form[action='/ui/sign-out'] input[name=csrf]", "value")
            refused = tab.page.request.post(
                f"{studio.url}/ui/jobs/{job}/cancel", form={"csrf": csrf}
            )
            assert refused.status == 403
            assert "may not cancel jobs" in refused.text()
        finally:
            _close(owner)
        assert studio.owner.get(f"/jobs/{job}").json()["status"] not in (
            "Canceled",
            "CancelRequested",
        )
    finally:
        studio.owner.post(f"/jobs/{job}/cancel")
        wait_for_job(studio.owner, job)


def test_signing_out_ends_the_session(studio: Studio, tab: Tab) -> None:
    tab.sign_in(studio.server.token)
    tab.page.click("form[action='/ui/sign-out'] button")
    tab.page.wait_for_url(re.compile(r".*/ui/sign-in$"))
    tab.open("/ui/jobs")
    assert "/ui/sign-in" in tab.page.url


# -- assets -----------------------------------------------------------------------------------


def test_the_asset_pages(studio: Studio, tab: Tab) -> None:
    tab.sign_in(studio.server.token)
    tab.open("/ui/data")
    tab.page.click("a[href='/ui/data/studio-data']")
    assert "azureml://datastores/workspaceblobstore/paths/studio/in/" in tab.page.content()
    tab.shot("data")
    tab.open("/ui/models")
    assert tab.page.locator("tbody tr").count() >= 1
    tab.shot("models")
    tab.open("/ui/datastores")
    assert tab.page.is_visible("a[href='/ui/datastores/workspaceblobstore']")
    tab.shot("datastores")
    tab.open("/ui/datastores/workspaceblobstore?path=studio/in")
    assert "file-03.txt" in tab.page.text_content("main")
    tab.open("/ui/components")
    tab.shot("components")


# -- a phone's width, the keyboard ------------------------------------------------------------


def test_pages_fit_a_phone_and_work_by_keyboard(studio: Studio) -> None:
    phone = _tab(studio, viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        phone.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=studio.url)
        phone.sign_in(studio.server.token)
        job = studio.owner.get("/jobs", params={"status": "Completed", "limit": 1}).json()
        for path, name in [
            ("/ui/endpoints", "phone-endpoints"),
            (f"/ui/endpoints/{ENDPOINT}", "phone-endpoint"),
            ("/ui/jobs", "phone-jobs"),
            *([(f"/ui/jobs/{job[0]['name']}", "phone-job")] if job else []),
        ]:
            phone.open(path)
            width = phone.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width} px wide on a phone"
            phone.shot(name)
        # By keyboard: the skip link comes first, then the copy button is reached and works.
        phone.open(f"/ui/endpoints/{ENDPOINT}")
        phone.page.keyboard.press("Tab")
        assert phone.page.evaluate("document.activeElement.className") == "skip"
        for _ in range(30):
            phone.page.keyboard.press("Tab")
            if phone.page.evaluate("document.activeElement.id") == "copy-rest-uri":
                break
        else:
            raise AssertionError("the copy button cannot be reached with Tab")
        phone.page.keyboard.press("Enter")
        expect(phone.page.locator("#copy-rest-uri")).to_have_text(re.compile("^Copied"))
        # The Consume tabs move with the arrow keys.
        phone.page.focus("#tab-cli")
        phone.page.keyboard.press("ArrowRight")
        assert phone.page.get_attribute("#tab-sdk", "aria-selected") == "true"
        assert phone.page.is_visible("#snippet-sdk")
    finally:
        _close(phone)
