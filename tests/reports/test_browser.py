"""The report in a real browser: headless Chromium driven by Selenium.

Runs in the default test run when Chromium can be had: the session fixture installs
Debian's ``chromium`` and ``chromium-driver`` with apt-get when they are missing and
we are root, and skips with the reason otherwise.  One browser serves every test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.resultset import ResultSet
from reports import render_report
from reports.screenshot import chromium_flags, find_chromium
from reports.synthetic import synthetic_run, write_scripts

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e .[test])"
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CASES = 60


def _install_chromium() -> str | None:
    """Install Debian's chromium and chromium-driver when missing; why not, or None."""
    if find_chromium() and shutil.which("chromedriver"):
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return "chromium or chromedriver is missing and we cannot apt-get install them (not root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another xdist worker may be installing them too
    for command in (
        ["apt-get", *wait, "update", "-qq"],
        ["apt-get", *wait, "install", "-y", "-qq", "chromium", "chromium-driver"],
    ):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{' '.join(command)} failed: {e}"
        if done.returncode != 0:
            return f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-200:]}"
    if not (find_chromium() and shutil.which("chromedriver")):
        return "apt-get installed chromium but no chromium or chromedriver is on PATH"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    why = _install_chromium()
    if why:
        pytest.skip(why)
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium() or ""
    for flag in chromium_flags(1200, 900):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    except WebDriverException as e:
        pytest.skip(f"chromium does not start under chromedriver: {e.msg}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ResultSet]:
    root = tmp_path_factory.mktemp("browser")
    write_scripts(root, CASES)
    rs = synthetic_run(CASES)
    rs.save(root / "results.json")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        render_report([root / "results.json"], root / "parity.html")
    finally:
        os.chdir(cwd)
    return root / "parity.html", rs


@pytest.fixture
def page(browser: Any, report: tuple[Path, ResultSet]) -> tuple[Any, ResultSet]:
    browser.set_window_size(1200, 900)
    browser.get(report[0].as_uri())
    return browser, report[1]


def visible_cases(driver: Any) -> list[str]:
    script = (
        "return Array.from(document.querySelectorAll('tbody.case'))"
        ".filter(b => !b.hidden).map(b => b.dataset.text.split(' ')[0]);"
    )
    return list(driver.execute_script(script))


def test_summary_numbers_match_the_json(page: tuple[Any, ResultSet]) -> None:
    driver, rs = page
    for target, counts in rs.summary().items():
        for verdict, n in counts.items():
            cell = driver.find_element(
                By.CSS_SELECTOR, f'tr[data-target="{target}"] td[data-verdict="{verdict}"]'
            )
            assert cell.text.split()[0] == str(n), (target, verdict)
    parity = rs.parity()["parity"]
    assert driver.find_element(By.CSS_SELECTOR, ".card.parity .pct").text == f"{parity:.1f}"
    assert len(visible_cases(driver)) == CASES
    assert driver.find_element(By.ID, "shown").text == f"{CASES} of {CASES} cases"


def test_text_and_verdict_filters_hide_rows(page: tuple[Any, ResultSet]) -> None:
    driver, rs = page
    box = driver.find_element(By.ID, "q")
    box.send_keys("rfc7323 syn_in")
    expected = sorted(
        {r.case.removeprefix("rfc_cases/") for r in rs if r.case.startswith("rfc_cases/rfc7323/syn_in")}
    )
    assert expected and sorted(visible_cases(driver)) == expected
    assert driver.find_element(By.ID, "shown").text == f"{len(expected)} of {CASES} cases"
    box.clear()
    box.send_keys(Keys.SPACE, Keys.BACKSPACE)  # an input event with the box empty
    assert len(visible_cases(driver)) == CASES

    driver.find_element(By.CSS_SELECTOR, '.vbtns button[data-verdict="xfail"]').click()
    with_xfail = sorted({r.case.removeprefix("rfc_cases/") for r in rs if r.verdict == "xfail"})
    assert sorted(visible_cases(driver)) == with_xfail
    button = driver.find_element(By.CSS_SELECTOR, '.vbtns button[data-verdict="xfail"]')
    assert button.get_attribute("aria-pressed") == "true"
    assert button.find_element(By.CSS_SELECTOR, ".n").text == str(len(with_xfail))

    driver.find_element(By.ID, "div").click()  # and divergent only
    divergent = {d["case"].removeprefix("rfc_cases/") for d in rs.parity()["divergent"]}
    assert sorted(visible_cases(driver)) == sorted(set(with_xfail) & divergent)
    hidden_groups = driver.execute_script(
        "return Array.from(document.querySelectorAll('tbody.group')).filter(g => g.hidden).length"
    )
    assert hidden_groups > 0  # a topic with no matching case loses its heading

    driver.find_element(By.ID, "reset").click()
    assert len(visible_cases(driver)) == CASES

    driver.find_element(By.CSS_SELECTOR, "#known summary").click()  # known divergences, by reason
    driver.find_element(By.CSS_SELECTOR, "button.show-q").click()
    reason = driver.find_element(By.ID, "q").get_attribute("value")
    assert sorted(visible_cases(driver)) == sorted(
        {r.case.removeprefix("rfc_cases/") for r in rs if r.reason == reason}
    )


def test_a_case_expands_to_its_details_by_mouse_and_keyboard(page: tuple[Any, ResultSet]) -> None:
    driver, _ = page
    first = driver.find_element(By.CSS_SELECTOR, "tbody.case")  # divergent and unexpected come first
    assert first.get_attribute("data-div") == "1"
    button = first.find_element(By.CSS_SELECTOR, "button.exp")
    details = first.find_element(By.CSS_SELECTOR, "tr.details")
    assert not details.is_displayed() and button.get_attribute("aria-expanded") == "false"
    button.click()
    assert details.is_displayed() and button.get_attribute("aria-expanded") == "true"
    text = details.text
    assert "departed here" in text  # the failing script line is marked
    assert "tcp.window" in text and "65160" in text and "64240" in text  # expected vs actual, field by field
    assert "Requirements: MUST-" in text.replace("\n", " ")  # the header's req: IDs
    assert len(details.find_elements(By.CSS_SELECTOR, "pre.tr")) == 2  # each target's trace
    button.send_keys(Keys.ENTER)  # the expander is a real button: the keyboard closes it
    assert not details.is_displayed() and button.get_attribute("aria-expanded") == "false"
    first.find_element(By.CSS_SELECTOR, "td.v").click()  # a click anywhere on the row opens it
    assert details.is_displayed()


def test_deep_link_opens_a_case_and_narrow_window_does_not_scroll_sideways(
    browser: Any, report: tuple[Any, ResultSet]
) -> None:
    browser.set_window_size(420, 900)
    browser.get(report[0].as_uri() + "#c3")
    body = browser.find_element(By.ID, "c3")
    assert body.find_element(By.CSS_SELECTOR, "tr.details").is_displayed()
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0


def test_screenshot_command_writes_a_small_png(browser: Any, tmp_path: Path) -> None:
    from reports.cli import main

    out = tmp_path / "shot.png"
    assert main(["screenshot", "-o", str(out), "--width", "600", "--height", "500"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 1_000 < len(data) < 200_000
