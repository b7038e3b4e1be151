"""The inspection page in a real headless browser (Debian's Chromium and its driver, as scripts/setup.sh
installs them): type a query, see four columns; open a test query the trained model loses, see the mined
pseudo labels of its passages."""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("httpx", reason="the serve extra: pip install 'lexdr[serve]'")
pytest.importorskip("fastapi", reason="the serve extra: pip install 'lexdr[serve]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install 'lexdr[test]'")

CHROMIUM = os.environ.get("LEXDR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("LEXDR_CHROMEDRIVER") or shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no headless browser here: install Debian's chromium and chromium-driver "
                    "(scripts/setup.sh does, as root) or set LEXDR_CHROMIUM / LEXDR_CHROMEDRIVER")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def test_query_columns_then_a_losing_test_query_and_its_mined_labels(browser, served_tiny_run, tiny_run_dir):
    from fixtures.tiny_run import weakest_trained
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(served_tiny_run)
    box = browser.find_element(By.ID, "q")
    box.send_keys("nile river")
    Select(browser.find_element(By.ID, "lang")).select_by_visible_text("tiny-en")
    browser.find_element(By.ID, "go").click()
    columns = browser.find_elements(By.CSS_SELECTOR, "section.column")
    assert [c.find_element(By.TAG_NAME, "h2").text.split()[0] for c in columns] == ["BM25", "base", "trained",
                                                                                   "adaptive"]
    bm25_top = columns[0].find_element(By.CSS_SELECTOR, ".hit")
    assert bm25_top.find_elements(By.TAG_NAME, "mark")  # the query's words are highlighted
    assert "nile" in bm25_top.text.lower()
    # each hit carries the rank the three other columns give it
    assert len(bm25_top.find_elements(By.CSS_SELECTOR, ".meta .badge[title^='rank in']")) == 3

    browser.find_element(By.LINK_TEXT, "Test set").click()
    weakest = weakest_trained(tiny_run_dir)  # below BM25's MRR@10, so it loses some test query
    for link in browser.find_elements(By.LINK_TEXT, weakest):  # not already the one shown: pick it
        link.click()
    browser.find_element(By.CSS_SELECTOR, "a.filter-loses").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.test-row")
    assert rows, "the tiny run has test queries the trained model loses against BM25"
    worst = rows[0]
    gap = float(worst.find_elements(By.TAG_NAME, "td")[1].text)
    assert gap < 0
    query = worst.find_element(By.CSS_SELECTOR, "a.open").text
    worst.find_element(By.CSS_SELECTOR, "a.open").click()
    assert browser.find_element(By.ID, "q").get_attribute("value") == query
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.column")) == 4
    gold = browser.find_elements(By.CSS_SELECTOR, ".hit.gold")
    assert gold, "the gold passage is marked in the columns that found it"
    # the passages' mined labels: follow one to the mining browser, which lists the pseudo labels
    label = browser.find_element(By.CSS_SELECTOR, "a.badge.mined-positive, a.badge.mined-negative")
    doc = label.find_element(By.XPATH, "./ancestor::div[contains(@class, 'hit')]").get_attribute("data-doc")
    label.click()
    assert browser.find_element(By.ID, "mining-overview")
    mined = browser.find_elements(By.CSS_SELECTOR, "div.hit.mined")
    assert mined and all(doc in m.get_attribute("innerHTML") for m in mined)
    assert browser.find_elements(By.CSS_SELECTOR, "div.mined-positive, div.mined-negative")
