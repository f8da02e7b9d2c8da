"""The live page in a real headless Chromium (Debian's package, driven by selenium) against a real
worker: the page asks for the read token, then shows a user's facets and recommendations and
redraws when new events arrive; the alerts view shows the feed and the entity's chart as news
arrive. Screenshots go to test-artefacts/ (or $INTEREST_STREAM_ARTEFACTS).

Without chromium and chromedriver the tests skip, saying how to install them; CI sets
INTEREST_STREAM_REQUIRE_BROWSER=1, which makes a missing browser a failure instead.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from streams.tools.demo import NEWS_USERS, bundled_data_dir
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import read_jsonl
from tests.helpers.kafka import produce
from tests.helpers.paths import ROOT

TOKEN = "page-read-token"
NOW = time.time() - 86400
TURN_TS = 1767441600.0  # the bundled news turn negative for TSLA here (scripts/make_news_data.py)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    reason = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    if os.environ.get("INTEREST_STREAM_REQUIRE_BROWSER") == "1":
        raise RuntimeError(reason)  # CI: a missing browser is a failure, not a skip
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only with a browser to drive
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ITEMS = [
    ("book-1", "Mystery novel", "A gripping mystery novel for long evenings.", "books"),
    ("book-2", "Poetry collection", "A quiet collection of modern poems.", "books"),
    ("book-3", "History of Rome", "The rise and fall of the Roman republic.", "books"),
    ("garden-1", "Pruning shears", "Sharp pruning shears for roses and shrubs.", "garden"),
    ("garden-2", "Tomato seeds", "Heirloom tomato seeds for a sunny vegetable bed.", "garden"),
    ("garden-3", "Watering can", "A large steel watering can for the garden.", "garden"),
]


def ev(kind: str, n: int, **fields) -> dict:
    return {"type": kind, "event_id": f"page-{kind}-{n}-{uuid.uuid4().hex[:6]}", "ts": NOW + n, **fields}


def artefacts() -> Path:
    out = Path(os.environ.get("INTEREST_STREAM_ARTEFACTS", ROOT / "test-artefacts"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    env = {**broker.worker_env, "INTEREST_STREAM_READ_TOKEN": TOKEN}
    produce(broker.url, [ev("item", 0, item_id=i, title=t, text=x, category=c) for i, t, x, c in ITEMS])
    w = WorkerProcess(broker.url, Path(tmp_path_factory.mktemp("page")), f"page-{uuid.uuid4().hex[:6]}", env)
    try:
        w.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == len(ITEMS), 180, "catalogue indexed")
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what: str, check, timeout_s: float = 60.0):
    """Poll the rendered page until ``check(driver)`` is truthy; the failure says what was awaited."""
    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(lambda d: check(d), message=what)


# The page redraws every second, so an element found now may be replaced before it is read:
# each read below is one script run in the page, which sees one rendered state.
def text_of(driver, element_id: str) -> str:
    return driver.execute_script("const e = document.getElementById(arguments[0]); return e ? e.innerText : '';",
                                 element_id)


def total_events(driver) -> int | None:
    value = driver.execute_script("const e = document.getElementById('event-total'); return e && e.dataset.total;")
    return int(value) if value is not None else None


def sentiment_score(driver) -> float:
    return float(driver.execute_script("return document.getElementById('sentiment-score').dataset.value;"))


def shown_recommendations(driver) -> list[dict]:
    return driver.execute_script("""return [...document.querySelectorAll('#recs li.rec')].map(
        li => ({item: li.dataset.item, badges: li.querySelectorAll('.badge').length}));""")


def interest_names(driver) -> set[str]:
    return set(driver.execute_script(
        "return [...document.querySelectorAll('#interests .interest')].map(e => e.dataset.name);"))


def chart_points(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('#entity-svg circle').length;")


def test_user_view_needs_the_token_then_redraws_as_events_arrive(worker, browser, broker):
    produce(broker.url, [
        ev("review", 1, user_id="reader", item_id="book-1", text="A wonderful, moving book. I loved it!", rating=5),
        ev("click", 2, user_id="reader", item_id="book-2"),
    ])
    browser.get(f"{worker.base}/ui?user=reader")
    # The read token is set: the page says so and shows no user data until it is given.
    wait_for(browser, "the token message", lambda d: "read token" in text_of(d, "message"))
    assert not browser.find_element(By.ID, "user-view").is_displayed()

    browser.find_element(By.ID, "token").send_keys(TOKEN, Keys.TAB)  # "change" fires on leaving the field
    wait_for(browser, "the profile with 2 events", lambda d: total_events(d) == 2)
    assert sentiment_score(browser) > 0.2  # one glowing review
    recs = wait_for(browser, "recommendations", shown_recommendations)
    assert not {r["item"] for r in recs} & {"book-1", "book-2"}  # already engaged with: never recommended
    _, api = get_json(f"{worker.base}/users/reader/recommendations?k=10", headers={"Authorization": f"Bearer {TOKEN}"})
    assert [r["item"] for r in recs] == [i["item_id"] for i in api["items"]]
    assert all(r["badges"] >= 1 for r in recs)  # every item says where it came from
    assert "books" in text_of(browser, "topic")
    before = sentiment_score(browser)

    # New events arrive; the open page redraws without a reload.
    produce(broker.url, [
        ev("review", 3 + n, user_id="reader", item_id=f"garden-{n + 1}",
           text=text, rating=1)
        for n, text in enumerate(["Terrible, broke on the first day. Awful.",
                                  "Useless and cheap. I hate it, a waste of money.",
                                  "Worst purchase ever, it leaks everywhere."])
    ])
    wait_for(browser, "the profile with 5 events", lambda d: total_events(d) == 5)
    wait_for(browser, "sentiment to fall", lambda d: sentiment_score(d) < before)
    assert "garden" in text_of(browser, "topic")
    assert "review" in text_of(browser, "movers")
    # Two tastes (books, then garden): interests named by their catalogue categories, both shown.
    wait_for(browser, "the books and garden interests", lambda d: interest_names(d) == {"books", "garden"})
    browser.save_screenshot(str(artefacts() / "live-page-user.png"))


def test_alerts_view_shows_the_feed_and_the_entity_chart_as_news_arrive(worker, browser, broker):
    news = list(read_jsonl(bundled_data_dir() / "news.jsonl"))
    split = next(i for i, n in enumerate(news) if isinstance(n["ts"], float) and n["ts"] > TURN_TS + 4 * 3600)
    browser.get(f"{worker.base}/ui/alerts")
    wait_for(browser, "an empty feed", lambda d: "no alerts yet" in text_of(d, "alerts"))

    produce(broker.url, [{**u, "ts": TURN_TS - 86400} for u in NEWS_USERS])
    produce(broker.url, news[:split])
    wait_for(browser, "the TSLA shift alert in the feed", lambda d: "TSLA shift" in text_of(d, "alerts"), timeout_s=180)
    # The chart follows the entity's API: one point per recent news item, the baseline drawn.
    _, tsla = get_json(f"{worker.base}/entities/TSLA")
    wait_for(browser, "the TSLA chart", lambda d: chart_points(d) == len(tsla["recent"]))
    assert "baseline" in text_of(browser, "entity-facts")
    assert "TSLA" in text_of(browser, "entity-name")
    browser.save_screenshot(str(artefacts() / "live-page-alerts.png"))


def test_static_files_and_user_list(worker):
    status, _ = get_json(f"{worker.base}/users?limit=10")
    assert status == 401  # the list of users is personal data too
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body = get_json(f"{worker.base}/users?limit=10", headers=auth)
    assert status == 200 and "reader" in body["users"]
    assert get_json(f"{worker.base}/users?limit=0", headers=auth)[0] == 400
    # The user ids records refuse or change are refused in paths too (a DELETE of " reader" would
    # queue a forget of "reader").
    for bad, reason in (("u" * 300, "longer than 256"), ("%20reader", "leading or trailing whitespace")):
        status, body = get_json(f"{worker.base}/users/{bad}/recommendations", headers=auth)
        assert status == 400 and reason in body["error"], body
    assert get_json(f"{worker.base}/ui/static/secrets.txt")[0] == 404


def test_screenshot_tool_shoots_the_page_with_its_script_run(worker, tmp_path):
    """What `demo --screenshot` uses: chromium's own headless screenshot, after the page's script ran."""
    from streams.tools.screenshot import screenshot

    out = screenshot(f"{worker.base}/ui?user=reader", tmp_path / "page.png", width=900, height=700)
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (900, 700)  # IHDR
