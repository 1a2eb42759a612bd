"""The web client in a real browser: Playwright driving a locally installed Chromium against the
real processes (the session's suite plus a gateway of these tests' own, which the reconnect
journey kills and restarts on the same port).

Every person is a separate browser context (own storage, own socket). At the end of each test
every page's screenshot lands in var/browser-screenshots/<test>/<person>.png, and the test fails
if a page raised an uncaught error, logged a console error, or loaded anything from outside its
own origin.

Without the ``playwright`` package or a Chromium binary the tests are skipped, and the reason is
printed in the report header and the skip summary.
"""
from __future__ import annotations

import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_env import AXE_SCRIPT, ROOT, expect, find_chromium, why_no_browser
from helpers import PASSWORD, own_suite, unique
from parley_common.testing import Proc, free_port, http_ok, wait_until

SCREENSHOTS = ROOT / "var" / "browser-screenshots"
TIMEOUT_MS = 30_000  # a loaded 2-core CI box: generous, every wait is for a condition
# Flags for a shared headless box: no sandbox (root in containers), nothing phoning home.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--disable-default-apps", "--mute-audio"]
# Chromium logs every HTTP error answer as a console error; 4xx answers are ones the client
# handles (a taken username, a wrong password), so only those are tolerated.
HANDLED_HTTP_ERROR = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
# Only while a test stops the gateway on purpose.
NETWORK_ERROR = re.compile(r"net::ERR_|WebSocket connection to .* failed")


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Not per session: while Playwright's sync API is running,
    its event loop counts as running in this thread, and every asyncio test after it would fail
    ("Runner.run() cannot be called from a running event loop")."""
    reason = why_no_browser()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=find_chromium(), args=LAUNCH_ARGS)
    except Exception as error:
        playwright.stop()
        pytest.skip(f"browser tests skipped: Chromium at {find_chromium()} does not start: {error}")
    yield chromium
    chromium.close()
    playwright.stop()


# --- a gateway of the browser tests' own ------------------------------------------------------

@dataclass
class Gateway:
    """A gateway process on a fixed port that a test may kill and start again."""
    env: dict
    logdir: Path
    name: str
    port: int = field(default_factory=free_port)
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Gateway":
        self.proc = Proc(self.name, "parley_gateway",
                         {**self.env, "PORT": str(self.port), "INSTANCE_ID": self.name},
                         self.logdir).start()
        wait_until(lambda: http_ok(self.url + "/healthz"), 60, what=f"{self.name} /healthz",
                   proc=self.proc)
        return self

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye to the sockets."""
        self.proc.stop(signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture(scope="session")
def gateway(suite) -> Gateway:
    """The browser tests' gateway, next to the suite's (same broker, databases and Redis)."""
    own = Gateway(suite.env, suite.isolation.workdir, "gateway-browser").start()
    yield own
    own.stop()


@pytest.fixture(scope="module")
def short_session_gateway(isolation, browser):
    """A suite of its own whose access tokens live 8 seconds (the refresh journey)."""
    with own_suite(isolation, "browsertokens", ACCESS_TOKEN_TTL_SECONDS="8",
                   LOGIN_FAILURES_PER_ADDRESS="500") as url:
        yield url


# --- people -------------------------------------------------------------------------------------

@dataclass
class Person:
    """One person: a browser context of their own with one page, and what they registered as."""
    label: str
    context: object
    page: object
    origin: str
    username: str = field(default_factory=lambda: unique("p"))
    password: str = PASSWORD
    display_name: str = ""
    problems: list = field(default_factory=list)
    network_errors_expected: bool = False

    # Shorthands for what a person looks at.
    def connection(self):
        """The connection status under one's name: Online, Connecting…, Offline — reconnecting…"""
        return self.page.get_by_role("complementary", name="Conversations").get_by_role("status")

    def sidebar(self):
        return self.page.get_by_role("list", name="Your rooms and direct messages")

    def conversation(self, name: str):
        return self.sidebar().get_by_role("button", name=re.compile(re.escape(name)))

    def messages(self):
        return self.page.get_by_role("log")

    def message(self, text: str):
        return self.messages().get_by_role("listitem").filter(has_text=text)

    def composer(self):
        return self.page.get_by_role("textbox", name="Message", exact=True)

    def open(self) -> "Person":
        self.page.goto(self.origin + "/")
        return self

    def register(self, display_name: str = "") -> "Person":
        """Register through the form (which logs in) and wait for the chat."""
        page = self.page
        self.display_name = display_name
        page.get_by_role("tab", name="Register").click()
        form = page.get_by_role("tabpanel", name="Register")
        form.get_by_label("Username", exact=True).fill(self.username)
        form.get_by_label("Email").fill(f"{self.username}@example.com")
        if display_name:
            form.get_by_label("Display name").fill(display_name)
        form.get_by_label("Password", exact=True).fill(self.password)
        form.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("complementary", name="Conversations")).to_be_visible()
        expect(self.connection()).to_have_text("Online")
        return self

    def login(self) -> "Person":
        page = self.page
        form = page.get_by_role("tabpanel", name="Log in")
        form.get_by_label("Username or email").fill(self.username)
        form.get_by_label("Password", exact=True).fill(self.password)
        form.get_by_role("button", name="Log in").click()
        expect(self.connection()).to_have_text("Online")
        return self

    def say(self, text: str) -> None:
        """Type and send a message; wait until the server has taken it (no longer pending)."""
        self.composer().fill(text)
        self.composer().press("Enter")
        sent = self.message(text)
        expect(sent).to_have_count(1)
        expect(sent.get_by_text("sending…")).to_have_count(0)

    def accept_next_confirm(self) -> None:
        self.page.once("dialog", lambda dialog: dialog.accept())

    def join_public(self, name: str, search: str | None = None) -> None:
        """Browse, search (by the name unless told), join: the room opens."""
        page = self.page
        page.get_by_role("button", name="Browse").click()
        dialog = page.get_by_role("dialog", name="Public rooms")
        dialog.get_by_label("Search public rooms").fill(search or name)
        dialog.get_by_role("button", name=f"Join {name}").click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("heading", name=f"# {name}")).to_be_visible()

    def message_someone(self, other: "Person") -> None:
        """Message… → search the other's username → their direct room opens."""
        page = self.page
        page.get_by_role("button", name="Message…").click()
        picker = page.get_by_role("dialog", name="Direct message")
        picker.get_by_label("Search people by name").fill(other.username)
        picker.get_by_role("button", name=f"Message: {other.username}").click()
        expect(picker).to_be_hidden()
        expect(page.get_by_role("heading", name=other.username)).to_be_visible()

    def create_room(self, name: str, *, private: bool = False, topic: str = "") -> None:
        page = self.page
        page.get_by_role("button", name="New room").click()
        dialog = page.get_by_role("dialog", name="New room")
        dialog.get_by_label("Name").fill(name)
        if topic:
            dialog.get_by_label("Topic").fill(topic)
        if private:
            dialog.get_by_role("radio", name=re.compile("Private")).check()
        dialog.get_by_role("button", name="Create").click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("heading", name=re.compile(re.escape(name)))).to_be_visible()


class People:
    """Opens browser contexts for one test; screenshots and checks them at the end."""

    def __init__(self, browser, origin: str, test_name: str):
        self.browser, self.origin, self.test_name = browser, origin, test_name
        self.everyone: list[Person] = []
        shutil.rmtree(SCREENSHOTS / test_name, ignore_errors=True)  # no pictures of a past run

    def new(self, label: str, *, origin: str | None = None, **context_options) -> Person:
        origin = origin or self.origin
        # No transitions: axe must not judge colours halfway through one.
        context_options.setdefault("reduced_motion", "reduce")
        context = self.browser.new_context(base_url=origin, **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        person = Person(label, context, page, origin)
        watch(person)
        self.everyone.append(person)
        return person

    def snapshot(self, person: Person, moment: str) -> None:
        """A screenshot along the way, next to the end-state ones."""
        folder = SCREENSHOTS / self.test_name
        folder.mkdir(parents=True, exist_ok=True)
        person.page.screenshot(path=str(folder / f"{person.label}-{moment}.png"))

    def finish(self, failed: bool) -> None:
        folder = SCREENSHOTS / self.test_name
        folder.mkdir(parents=True, exist_ok=True)
        problems = []
        for person in self.everyone:
            try:
                if not person.page.is_closed():
                    person.page.screenshot(path=str(folder / f"{person.label}.png"))
            except Exception as error:  # a screenshot must not hide the test's own failure
                problems.append(f"{person.label}: no screenshot: {error}")
            problems.extend(f"{person.label}: {p}" for p in person.problems)
            try:
                person.context.close()
            except Exception:
                pass
        if problems and not failed:
            pytest.fail("the pages reported problems:\n" + "\n".join(problems), pytrace=False)


def watch(person: Person) -> None:
    """Collect uncaught errors, console errors and requests that leave the page's origin."""
    origin = urlsplit(person.origin)

    def same_origin(url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True
        return parts.hostname == origin.hostname and parts.port == origin.port and \
            parts.scheme in ("http", "ws")

    def on_console(message) -> None:
        if message.type != "error":
            return
        text = message.text
        if HANDLED_HTTP_ERROR.search(text):
            return
        if person.network_errors_expected and NETWORK_ERROR.search(text):
            return
        person.problems.append(f"console error: {text}")

    def on_request(request) -> None:
        if not same_origin(request.url):
            person.problems.append(f"request outside the origin: {request.url}")

    def on_websocket(socket) -> None:
        if not same_origin(socket.url):
            person.problems.append(f"WebSocket outside the origin: {socket.url}")

    person.page.on("pageerror", lambda error: person.problems.append(f"uncaught error: {error}"))
    person.page.on("console", on_console)
    person.context.on("request", on_request)
    person.page.on("websocket", on_websocket)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_test_failed = report.failed


@pytest.fixture
def people(browser, gateway, request):
    crowd = People(browser, gateway.url, request.node.name)
    yield crowd
    crowd.finish(getattr(request.node, "browser_test_failed", False))


# --- someone using the API directly (to fill a room fast, or to talk from another gateway) ---

class ApiPerson:
    """A registered, logged-in user talking JSON to one gateway (requests, synchronous)."""

    def __init__(self, base: str, username: str | None = None):
        import requests

        self.base = base
        self.username = username or unique("api")
        self.http = requests.Session()
        self.call("POST", "/auth/register", {"username": self.username, "password": PASSWORD,
                                             "email": f"{self.username}@example.com"})
        token = self.call("POST", "/auth/login",
                          {"username": self.username, "password": PASSWORD})["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        response = self.http.request(method, f"{self.base}/api/v1{path}", json=body, timeout=30)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def say(self, room_id: str, text: str) -> dict:
        return self.call("POST", f"/rooms/{room_id}/messages", {"text": text})["message"]

    def public_room(self, name: str) -> dict:
        rooms = self.call("GET", f"/rooms?scope=public&q={name}")["rooms"]
        return next(room for room in rooms if room["name"] == name)


@pytest.fixture
def api_person(gateway):
    """Makes ApiPersons: ``api_person()`` on the browser tests' gateway, ``api_person(url)``."""
    return lambda base=None: ApiPerson(base or gateway.url)


@pytest.fixture(scope="session")
def axe_violations():
    """Runs axe-core (npm, under var/browser-tools) in a page: its serious and critical
    violations. Injected through the DevTools protocol, so the page's CSP stays as it is."""
    if not AXE_SCRIPT.exists():
        pytest.skip(f"axe check skipped: {AXE_SCRIPT.relative_to(ROOT)} is missing "
                    "(make test installs axe-core with npm)")
    source = AXE_SCRIPT.read_text()

    def run(page) -> list[str]:
        page.evaluate(source)
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        return [f"{v['id']} ({v['impact']}): {v['help']}: "
                + "; ".join(f"{' '.join(node['target'])}: {node.get('failureSummary', '')}"
                            for node in v["nodes"][:4])
                for v in result["violations"] if v["impact"] in ("serious", "critical")]
    return run


@pytest.fixture(scope="session")
def assert_axe_clean(axe_violations):
    """``assert_axe_clean(page)``: fails listing axe-core's serious and critical violations
    (skipped, like axe_violations, where axe-core is not installed)."""
    def check(page) -> None:
        problems = axe_violations(page)
        assert not problems, "axe-core:\n" + "\n".join(problems)
    return check
