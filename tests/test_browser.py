"""The browser page served by the gateway at `/`, in real headless Chromium (Debian's), driven by Playwright, with a
fake microphone fed from a WAV file, playing its reply into the virtual sound card."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.speech import speak
from tests.split_stack import split_stack
from tests.transcribe import words
from tests.virtual_sound import missing_tools, virtual_sound_card

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM) or bool(missing_tools()), reason="needs Debian chromium and PulseAudio tools")

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
SCREENSHOT_COPY = os.environ.get("S2S_BROWSER_SCREENSHOT")  # where to keep the page's screenshot, if set


@pytest.fixture(scope="module")
def gateway():
    with split_stack() as stack:
        yield stack


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory) -> Path:
    """The question once, then silence long enough that Chromium's looping fake microphone does not repeat it."""
    folder = tmp_path_factory.mktemp("fake-mic")
    spoken = speak("What is the capital of France?", folder / "q.wav", pad_s=1.0, rate=48000)
    padded = folder / "mic.wav"
    subprocess.run(["sox", str(spoken), str(padded), "pad", "0", "60"], check=True)
    return padded


@pytest.fixture(scope="module")
def browser(tmp_path_factory, microphone_wav):
    card_dir = tmp_path_factory.mktemp("vsnd")
    with virtual_sound_card(card_dir) as card, playwright_api.sync_playwright() as pw:
        # Chromium plays through the virtual sound card (a real audio output, no hardware).
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-audio-capture={microphone_wav}"], env=card.env)
        try:
            yield chromium
        finally:
            chromium.close()


def page_state(page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(window.s2s))")


def wait_state(page, condition, timeout_s: float, what: str) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = page_state(page)
        if condition(state):
            return state
        page.wait_for_timeout(100)  # polling the page's state
    raise AssertionError(f"the page never reached: {what}; state: {page_state(page)}")


def test_page_is_served_at_the_root(gateway):
    page = httpx.get(f"{gateway.http}/")
    assert page.status_code == 200 and "<script type=\"module\" src=\"/web/app.js\">" in page.text
    assert httpx.get(f"{gateway.http}/web/worklets.js").status_code == 200


def test_spoken_question_in_chromium_gets_a_transcript_and_played_reply(gateway, browser, tmp_path):
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(f"{gateway.http}/")
    page.fill("#token", gateway.token)
    page.click("#connect")
    wait_state(page, lambda s: s["connected"], 20, "connected")

    def answered_and_played(s: dict) -> bool:
        reply = next((t for t in s["transcript"] if t["role"] == "assistant"), None)
        return reply is not None and s["played"].get(reply["item"], 0) >= 0.95 * s["received"].get(reply["item"], 1) and bool(s["turns"])

    state = wait_state(page, answered_and_played, 120, "a reply that was played to its end")
    user = next(t for t in state["transcript"] if t["role"] == "user")
    reply = next(t for t in state["transcript"] if t["role"] == "assistant")
    assert "capital" in words(user["text"]), state["transcript"]
    assert reply["status"] == "completed" and words(reply["text"]), reply
    played_s = state["played"][reply["item"]] / 48000
    assert played_s > 0.5, state["played"]
    assert state["micChunks"] > 0 and state["errors"] == [], state
    assert state["echoCancellation"] is True, "echo cancellation is the default (no headphones)"

    wait_state(page, lambda s: s["status"] == "listening", 10, "listening again once the reply played out")
    # What a person sees: both lines in the log and a latency figure for the turn.
    log = page.inner_text("#log")
    assert user["text"] in log and reply["text"] in log, log
    latency = page.inner_text("#latency")
    assert latency.endswith(" ms") and int(latency.split()[0]) > 0, latency
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    if SCREENSHOT_COPY:
        shutil.copy(shot, SCREENSHOT_COPY)
    print(f"user: {user['text']!r} reply: {reply['text']!r} played {played_s:.1f} s, latency {latency}")
    page.close()


def test_a_wrong_token_is_refused_and_the_page_asks_for_it(gateway, browser):
    page = browser.new_page()
    page.goto(f"{gateway.http}/")
    page.fill("#token", "not-the-token")
    page.click("#connect")
    state = wait_state(page, lambda s: "refused" in s["status"], 20, "a refusal")
    assert not state["connected"]
    assert "wanted" in page.get_attribute("#token", "class")
    page.close()
