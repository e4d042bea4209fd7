"""The browser page served by the gateway at `/`, in real headless Chromium (Debian's), driven by Playwright, with a
fake microphone fed from a WAV file, playing its reply into the virtual sound card."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.speech import speak
from tests.transcribe import words
from tests.virtual_sound import missing_tools

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) or bool(missing_tools()), reason="needs Debian chromium and PulseAudio tools"
)

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOT_COPY = os.environ.get("S2S_BROWSER_SCREENSHOT")  # where to keep the page's screenshot, if set


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory) -> Path:
    """The question once, then silence long enough that Chromium's looping fake microphone does not repeat it."""
    folder = tmp_path_factory.mktemp("fake-mic")
    spoken = speak("What is the capital of France?", folder / "q.wav", pad_s=1.0, rate=48000)
    padded = folder / "mic.wav"
    subprocess.run(["sox", str(spoken), str(padded), "pad", "0", "60"], check=True)
    return padded


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as pw:
        yield pw


@contextmanager
def chromium_hearing(pw, card, microphone_wav: Path):
    """Chromium whose microphone plays ``microphone_wav`` and whose speaker is the virtual sound card (no hardware)."""
    chromium = pw.chromium.launch(
        executable_path=CHROMIUM, args=[*FLAGS, f"--use-file-for-fake-audio-capture={microphone_wav}"], env=card.env
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def browser(playwright, sound_card, microphone_wav):
    with chromium_hearing(playwright, sound_card, microphone_wav) as chromium:
        yield chromium


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


def reply_played_out(s: dict) -> bool:
    """The page has a reply, its speaker played (almost) all of it, and it measured the turn's latency."""
    reply = next((t for t in s["transcript"] if t["role"] == "assistant"), None)
    return (
        reply is not None
        and s["played"].get(reply["item"], 0) >= 0.95 * s["received"].get(reply["item"], 1)
        and bool(s["turns"])
    )


def test_page_is_served_at_the_root(gateway):
    page = httpx.get(f"{gateway.http}/")
    assert page.status_code == 200 and '<script type="module" src="/web/app.js">' in page.text
    assert httpx.get(f"{gateway.http}/web/worklets.js").status_code == 200


def test_spoken_question_in_chromium_gets_a_transcript_and_played_reply(gateway, browser, tmp_path):
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(f"{gateway.http}/")
    page.fill("#token", gateway.token)
    page.click("#connect")
    wait_state(page, lambda s: s["connected"], 20, "connected")

    state = wait_state(page, reply_played_out, 120, "a reply that was played to its end")
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


def test_push_to_talk_sends_only_while_held_and_answers_on_release(gateway, playwright, sound_card, tmp_path):
    """Manual turns: the page turns server VAD off; the question is what was said while the button was held."""
    spoken = speak("How many days are in a week?", tmp_path / "q.wav", pad_s=0, rate=48000)
    mic_wav = tmp_path / "mic.wav"
    subprocess.run(["sox", str(spoken), str(mic_wav), "pad", "3", "60"], check=True)  # 3 s to press the button first
    with chromium_hearing(playwright, sound_card, mic_wav) as chromium:
        page = chromium.new_page()
        page.goto(f"{gateway.http}/")
        page.fill("#token", gateway.token)
        page.check("input[value=push-to-talk]")
        page.click("#connect")
        wait_state(
            page, lambda s: s["connected"] and s["status"] == "hold to talk", 20, "connected, waiting for the button"
        )
        page.hover("#ptt")
        page.mouse.down()
        assert page_state(page)["lastVoiceAt"] is None, "the question began before the button was held"
        # Hold while the question plays, let go after 0.8 s of quiet (the page's own microphone level).
        wait_state(
            page,
            lambda s: s["lastVoiceAt"] is not None and page.evaluate("performance.now()") - s["lastVoiceAt"] > 800,
            30,
            "the question spoken",
        )
        page.mouse.up()

        state = wait_state(page, reply_played_out, 120, "a reply played to its end")
        user = next(t for t in state["transcript"] if t["role"] == "user")
        reply = next(t for t in state["transcript"] if t["role"] == "assistant")
        assert "week" in words(user["text"]) and words(reply["text"]), state["transcript"]
        assert state["errors"] == [] and state["turns"][0]["latencyMs"] > 0, state
        wait_state(
            page, lambda s: s["status"] == "hold to talk", 10, "waiting for the button again once the reply played out"
        )
        print(
            f"push-to-talk: user {user['text']!r} reply {reply['text']!r}, {state['turns'][0]['latencyMs']} ms from release to reply"
        )
