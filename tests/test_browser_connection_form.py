"""Issue 7: the Stripe connection in the real Airflow 3 UI, driven with headless Chromium.

A real ``airflow api-server`` (REST API and React UI) runs from a throwaway AIRFLOW_HOME; the
browser adds a Stripe connection the way a person does (Admin → Connections → Add Connection),
presses Test against the fake Stripe server with a valid and with a wrong key, and reopens the
saved connection. Screenshots land in ``artifacts/browser/``.

Airflow 3.3's UI has no Test button inside the add/edit form: Test is a button on the
connection's row in the list, so the connection is saved first and tested from the list.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import CHROMIUM, launch

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser test",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright module is missing: install the 'browser' extra (never `playwright install`)",
)
expect = sync_api.expect

from airflow_provider_mantrix import get_provider_info  # noqa: E402
from airflow_provider_mantrix.fake_stripe import ACCOUNT_ID, TEST_SECRET_KEY  # noqa: E402
from airflow_provider_mantrix.hooks.stripe import (  # noqa: E402
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUESTS_PER_SECOND,
)
from tests.browser.airflow_server import AirflowApiServer  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
STRIPE_FORM = get_provider_info()["connection-types"][0]
WRONG_KEY = "sk_test_" + "x" * 24 + "WXYZ"
CONN_ID = "stripe_ui"
TEST_ENDPOINT = "/api/v2/connections/test"
# apache/airflow#73298: the list's Test button posts port 0 for a connection without a port, and
# the API of Airflow 3.3.1 and 3.3.2 answers 400 with this message instead of testing it. The test
# then shows it (screenshot 03a), warns, and sends port null as the upstream fix makes it mean.
PORT_ZERO_BUG = "The host or port to test differs from the stored connection"


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApiServer]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*.png"):
        stale.unlink()
    server = AirflowApiServer(tmp_path_factory.mktemp("airflow-ui-home"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    with sync_api.sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context
        finally:
            context.close()


class Recorder:
    """What went wrong in the page (API errors, console errors), for the failure report."""

    def __init__(self, page) -> None:
        self.events: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.events.append(f"console: {m.text}"))
        page.on("response", self._response)

    def _response(self, response) -> None:
        if "/api/" in response.url and response.status >= 400:
            self.events.append(f"{response.request.method} {response.url} -> {response.status}")

    def __str__(self) -> str:
        return "--- browser events ---\n" + ("\n".join(self.events[-30:]) or "(none)")


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    yield page
    page.close()


@pytest.fixture
def report_failures(page, airflow_ui: AirflowApiServer):
    """``with report_failures:`` adds the API server's log tail and the page's errors to a failure."""
    return airflow_ui.explain_failure(Recorder(page))


# -- what a person does ----------------------------------------------------------------------------


def open_connections(page, server: AirflowApiServer) -> None:
    """Home → Admin → Connections."""
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    page.wait_for_url(re.compile(r"/connections$"))
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible()


def add_stripe_connection(page, conn_id: str):
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill(conn_id)
    connection_type = dialog.get_by_role("combobox", name="Connection Type")
    connection_type.click()
    connection_type.fill("Stripe")
    page.get_by_role("option", name="Stripe", exact=True).click()
    expect(dialog.get_by_role("button", name="Standard Fields")).to_be_visible()
    return dialog


def field(dialog, label: str):
    """The form field (label, input, help text) whose label starts with ``label``.

    Airflow 3.3's string extra fields do not link label and input (``for`` names another id), so
    a field is found as the group that holds the label.
    """
    label_element = dialog.page.locator("label", has_text=re.compile(rf"^\s*{re.escape(label)}"))
    return dialog.get_by_role("group").filter(has=label_element)


def visible_labels(dialog) -> list[str]:
    texts = dialog.locator("label:visible").all_inner_texts()
    return [re.sub(r"\s*\*\s*$", "", text).strip() for text in texts]


def open_section(dialog, name: str):
    """Expand one of the form's accordion sections (if it is not open) and return its region."""
    button = dialog.get_by_role("button", name=name, exact=True)
    if button.get_attribute("aria-expanded") != "true":
        button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    region = dialog.locator(f"[id='{button.get_attribute('aria-controls')}']")
    expect(region).to_be_visible()
    return region


def save(page, dialog) -> None:
    with page.expect_response(
        lambda r: "/api/v2/connections" in r.url and r.request.method in ("POST", "PATCH")
    ) as saved:
        dialog.get_by_role("button", name="Save").click()
    assert saved.value.ok, f"saving failed: {saved.value.status} {saved.value.text()}"
    expect(dialog).to_be_hidden()


def row(page, conn_id: str):
    return page.get_by_role("row").filter(has_text=conn_id)


def edit(page, conn_id: str):
    row(page, conn_id).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Secret Key")).to_be_visible()
    return dialog


def _port_zero_as_unset(route) -> None:
    body = json.loads(route.request.post_data or "{}")
    if body.get("port") == 0:
        body["port"] = None
    route.continue_(post_data=json.dumps(body))


def press_test(page, conn_id: str, *, work_around_port_bug: bool = True) -> tuple[dict, str]:
    """Press the row's Test button; the API's answer and the text of the toast that shows it."""
    page.mouse.move(700, 500)  # off the toasts: a hovered toast never goes away
    expect(page.get_by_role("status")).to_have_count(0, timeout=20_000)  # earlier toasts gone
    with page.expect_response(lambda r: r.url.endswith(TEST_ENDPOINT)) as answer:
        row(page, conn_id).get_by_role("button", name="Test Connection").click()
    response = answer.value
    body = response.json()
    if work_around_port_bug and response.status == 400 and PORT_ZERO_BUG in str(body.get("detail")):
        # What a person sees on Airflow 3.3.2: the Test button fails before the hook runs.
        toast = page.get_by_role("status").filter(has_text="Test Connection Failed")
        expect(toast).to_contain_text("Bad Request")
        page.screenshot(path=ARTIFACTS / "03a-test-button-airflow-port-bug.png", animations="disabled")
        warnings.warn(
            "Airflow's Test button posts port 0 for a connection without a port and this Airflow "
            "answers 400 (apache/airflow#73298, not fixed in 3.3.2); the test sends port null instead.",
            stacklevel=2,
        )
        page.route(f"**{TEST_ENDPOINT}", _port_zero_as_unset)
        return press_test(page, conn_id, work_around_port_bug=False)
    assert response.status == 200, f"{TEST_ENDPOINT} answered {response.status}: {body}"
    title = "Test Connection Successful" if body["status"] else "Test Connection Failed"
    toast = page.get_by_role("status").filter(has_text=title).filter(has_text=body["message"])
    expect(toast).to_be_visible()
    page.mouse.move(700, 500)  # no tooltip over the row in the screenshot
    return body, toast.inner_text()


# -- the tests -------------------------------------------------------------------------------------


def test_stripe_form_shows_the_stripe_fields(page, airflow_ui: AirflowApiServer, report_failures) -> None:
    with report_failures:
        open_connections(page, airflow_ui)
        dialog = add_stripe_connection(page, "stripe_form_only")

        # Standard fields: only the secret key (and Airflow's own description), relabelled.
        secret = dialog.get_by_label("Secret Key")
        expect(secret).to_be_visible()
        expect(secret).to_have_attribute("type", "password")
        expect(secret).to_have_attribute(
            "placeholder", STRIPE_FORM["ui-field-behaviour"]["placeholders"]["password"]
        )
        expect(secret).to_have_attribute("placeholder", "sk_live_...")
        expect(dialog.get_by_label("Connection ID")).to_have_value("stripe_form_only")
        standard = open_section(dialog, "Standard Fields")
        labels = visible_labels(dialog)
        assert labels[:2] == ["Connection ID", "Connection Type"], labels
        assert visible_labels(standard) == ["Description", "Secret Key"], visible_labels(standard)
        for hidden in ("Host", "Port", "Login", "Schema", "Password"):
            assert hidden not in labels, f"{hidden!r} shows in the Stripe form: {labels}"
        dialog.screenshot(path=ARTIFACTS / "01-stripe-form-standard-fields.png")

        # Extra fields: every conn-field, in order, with its label and help text, empty by default.
        extra = open_section(dialog, "Extra Fields")
        conn_fields = STRIPE_FORM["conn-fields"]
        assert visible_labels(extra) == [spec["label"] for spec in conn_fields.values()], visible_labels(
            extra
        )
        for spec in conn_fields.values():
            assert spec["label"].endswith("(optional)"), spec["label"]
            group = field(extra, spec["label"])
            expect(group.locator("[data-part=helper-text]")).to_have_text(spec["description"])
            expect(group.locator("input")).to_have_value("")
        for hidden in ("Host", "Port", "Login", "Schema"):
            assert hidden not in visible_labels(dialog)
        dialog.screenshot(path=ARTIFACTS / "02-stripe-form-extra-fields.png")

        # The help texts promise the defaults the hook really uses.
        help_text = {name: spec["description"] for name, spec in conn_fields.items()}
        assert f"Default {DEFAULT_MAX_RETRIES}." in help_text["max_network_retries"]
        for livemode, mode in ((False, "test"), (True, "live")):
            default = f"{DEFAULT_REQUESTS_PER_SECOND[livemode]:g} for {mode} keys"
            assert default in help_text["max_requests_per_second"], (
                default,
                help_text["max_requests_per_second"],
            )

        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_be_hidden()


def test_test_button_names_the_account_hides_a_wrong_key_and_saved_key_is_masked(
    page, airflow_ui: AirflowApiServer, stripe_server, report_failures
) -> None:
    with report_failures:
        open_connections(page, airflow_ui)
        dialog = add_stripe_connection(page, CONN_ID)
        dialog.get_by_label("Secret Key").fill(TEST_SECRET_KEY)
        open_section(dialog, "Extra Fields")
        field(dialog, "API base URL").locator("input").fill(stripe_server.url)
        save(page, dialog)
        expect(row(page, CONN_ID)).to_be_visible()

        # How the UI stored it: the key encrypted at rest, the form's extras without a prefix.
        stored = airflow_ui.stored_connection(CONN_ID)
        assert stored is not None and stored["conn_type"] == "stripe"
        assert stored["password"] == TEST_SECRET_KEY
        assert TEST_SECRET_KEY not in stored["password_at_rest"]
        assert stored["extra"].get("api_base") == stripe_server.url, stored["extra"]
        assert not any(key.startswith("extra__") for key in stored["extra"]), stored["extra"]
        print(f"\nextra as the UI saved it: {json.dumps(stored['extra'])}")

        # A valid test key: Test names the account and the mode.
        answer, toast = press_test(page, CONN_ID)
        assert answer["status"] is True, answer
        assert ACCOUNT_ID in toast and "test mode" in toast, toast
        assert TEST_SECRET_KEY not in page.content()
        page.screenshot(path=ARTIFACTS / "03-test-valid-key.png", animations="disabled")

        # A wrong key: Test says it is invalid and shows no more than its last four characters.
        dialog = edit(page, CONN_ID)
        dialog.get_by_label("Secret Key").fill(WRONG_KEY)
        save(page, dialog)
        answer, toast = press_test(page, CONN_ID)
        assert answer["status"] is False, answer
        assert "invalid" in toast.lower() and "401" in toast, toast
        assert WRONG_KEY not in json.dumps(answer)
        assert WRONG_KEY not in page.content() and WRONG_KEY not in page.inner_text("body")
        assert WRONG_KEY[8:-4] not in page.content()
        page.screenshot(path=ARTIFACTS / "04-test-wrong-key.png", animations="disabled")

        # Back to the valid key; the saved connection reopens with the key masked.
        dialog = edit(page, CONN_ID)
        dialog.get_by_label("Secret Key").fill(TEST_SECRET_KEY)
        save(page, dialog)
        assert airflow_ui.stored_connection(CONN_ID)["password"] == TEST_SECRET_KEY
        dialog = edit(page, CONN_ID)
        secret = dialog.get_by_label("Secret Key")
        expect(secret).to_have_attribute("type", "password")
        dialog.get_by_role("button", name="Show value").click()
        expect(secret).to_have_attribute("type", "text")
        assert secret.input_value() != TEST_SECRET_KEY
        assert set(secret.input_value()) <= {"*"}, secret.input_value()
        open_section(dialog, "Extra Fields")
        expect(field(dialog, "API base URL").locator("input")).to_have_value(stripe_server.url)
        html = page.content()
        assert TEST_SECRET_KEY not in html and TEST_SECRET_KEY[8:] not in html
        open_section(dialog, "Standard Fields")
        dialog.screenshot(path=ARTIFACTS / "05-saved-connection-key-masked.png")
        dialog.get_by_role("button", name="Close").click()

        # Neither key reached the API server's log.
        log = airflow_ui.log_path.read_text(errors="replace")
        assert TEST_SECRET_KEY not in log and WRONG_KEY not in log
