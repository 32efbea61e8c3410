"""The review page in a real headless Chromium (Debian's, driven by Selenium through Debian's
chromedriver; nothing downloaded): three annotators sign in and label a small release with the
keyboard while its video plays, and a lead's results page shows Fleiss' kappa."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from emofactory.core.classes import CANONICAL
from tests.helpers import ReviewSite

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="Debian's chromium and chromium-driver are not installed (make system)"
)
LABELS = ["anger", "happiness", "sadness", "fear"]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never looks for a browser to download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required", "--window-size=1100,900",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def sign_in(driver, base: str, name: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "signin").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "a.release"), "the release list")


def wait_for(condition, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.1)
    return found


def test_three_annotators_label_a_release_in_the_browser_and_the_lead_sees_kappa(browser, tmp_path):
    from selenium.webdriver.common.by import By

    site = ReviewSite(tmp_path, LABELS)
    try:
        for n, name in enumerate(("ann", "bea", "cem")):
            sign_in(browser, site.base, name, site.annotator(name))
            browser.find_element(By.CSS_SELECTOR, "a.release").click()
            for _ in range(len(LABELS)):
                clip = wait_for(lambda: browser.find_elements(By.ID, "clip"), "a clip")[0].get_attribute("data-clip")
                video = browser.find_element(By.ID, "video")
                # the clip plays, sound and all: time moves and the decoder reports an audio track
                played = browser.execute_async_script(
                    "const [v, done] = arguments; v.muted = false; v.currentTime = 0;"
                    "v.play().then(() => setTimeout(() => done([v.currentTime, v.duration, v.readyState,"
                    " v.webkitAudioDecodedByteCount || 0]), 600), (e) => done(String(e)));",
                    video,
                )
                assert isinstance(played, list) and played[0] > 0 and 1.3 < played[1] < 1.7, played
                assert played[2] >= 2 and played[3] > 0, played
                assert browser.find_element(By.ID, "frame").get_attribute("naturalWidth") != "0"
                assert browser.find_element(By.ID, "transcript").text.startswith("utterance")
                # key 1-7 answers: the first two annotators agree, the third says the next class
                factory = next(r["label"] for r in site.release.records if r["clip_id"] == clip)
                label = factory if n < 2 else LABELS[(LABELS.index(factory) + 1) % len(LABELS)]
                if n == 0 and not (tmp_path / "clip.png").exists():
                    browser.save_screenshot(str(tmp_path / "clip.png"))
                browser.find_element(By.TAG_NAME, "body").send_keys(str(CANONICAL.index(label) + 1))
                wait_for(
                    lambda c=clip: not browser.find_elements(By.CSS_SELECTOR, f'[data-clip="{c}"]'), "the next clip"
                )
            assert browser.find_elements(By.ID, "done")
        stored = site.labels()
        assert len(stored) == len(LABELS) and all(len(by) == 3 for by in stored.values())

        sign_in(browser, site.base, "lead", site.annotator("lead", lead=True))
        browser.get(f"{site.base}/r/{site.release_id}/results")
        kappa = float(browser.find_element(By.ID, "kappa").text)
        assert -1 <= kappa < 1  # one annotator in three disagrees on every clip
        assert "100.0%" in browser.find_element(By.ID, "factory-agrees").text
        browser.save_screenshot(str(tmp_path / "results.png"))
        assert (tmp_path / "results.png").stat().st_size > 10_000
    finally:
        site.close()
