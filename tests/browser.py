"""Headless Chromium for the portal tests: Debian's chromium and chromium-driver, nothing
downloaded (Selenium Manager is never asked: both paths are given). Screenshots go to
tests/artifacts/ (ignored by git) so a reviewer can look at the pages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: (name, width, height): a phone and a laptop
VIEWPORTS = (("phone", 390, 844), ("desktop", 1280, 900))


def chromium(width: int, height: int):
    """A headless Chromium with a ``width``×``height`` viewport (skipped, or failed under CI, without it)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                "--disable-gpu", "--lang=vi", f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    # the viewport itself at the asked size (a headless window's frame differs between versions)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    return driver


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def overflow(driver) -> tuple[int, int]:
    """(scrollWidth, innerWidth): the page scrolls sideways when the first exceeds the second."""
    return tuple(driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]"))


def tab_order(driver, presses: int = 40) -> list[str]:
    """What Tab reaches from the top of the page, in order (id, name or tag of each focus)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    seen = []
    for _ in range(presses):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        seen.append(driver.execute_script(
            "const e = document.activeElement; return e.id || e.name || e.getAttribute('href') || e.tagName"))
    return seen


_TEXT_COLOURS = """
const out = [];
function bg(e) {
  for (; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && !/rgba\\(.*, 0\\)$/.test(c) && c !== 'transparent') return c;
  }
  return 'rgb(255, 255, 255)';
}
for (const e of document.querySelectorAll('body *')) {
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || e.offsetParent === null) continue;
  const s = getComputedStyle(e);
  out.push([e.tagName, e.textContent.trim().slice(0, 40), s.color, bg(e), parseFloat(s.fontSize), parseInt(s.fontWeight)]);
}
return out;
"""


def _luminance(rgb: str) -> float:
    values = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
    lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def low_contrast(driver) -> list[tuple]:
    """Text below WCAG 2.1 AA (1.4.3): 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold)."""
    bad = []
    for tag, text, fg, bg, size, weight in driver.execute_script(_TEXT_COLOURS):
        large = size >= 24 or (size >= 18.66 and weight >= 700)
        ratio = contrast(fg, bg)
        if ratio < (3.0 if large else 4.5):
            bad.append((tag, text, fg, bg, round(ratio, 2)))
    return bad


def unlabelled_fields(driver) -> list[str]:
    """Inputs without a <label for=...> (WCAG 1.3.1, 4.1.2)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('input, select, textarea')]"
        ".filter(e => e.type !== 'hidden' && !(e.id && document.querySelector(`label[for=\"${e.id}\"]`)))"
        ".map(e => e.name || e.outerHTML)")
