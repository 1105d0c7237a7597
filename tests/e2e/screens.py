"""Screenshots and width checks for the console's browser tests: a viewport of a given
width, waiting for a page to settle, a full-page screenshot under the artifacts (copied to
docs/screens/ for the README with `LEADFLOW_README_SCREENS=1`), and what overflows the
screen sideways."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from chromium import Browser
from selenium.webdriver.common.by import By
from support import eventually
from test_console import ARTIFACTS

PHONE_HEIGHT = 812
DESKTOP_HEIGHT = 1000
LONGEST_SHOT = 6000  # px: a page longer than this is shot down to here
SCREENS = Path(__file__).parents[2] / "docs" / "screens"
# A browser time zone far from the console's, so a date shown in Asia/Shanghai is told apart.
# The elements wider than the screen that do not scroll themselves (each as tag#id.class).
OVERFLOWING = """
// The width inside the vertical scrollbar: what is beyond it is hidden behind the scrollbar.
const width = document.documentElement.clientWidth;
const scrolls = (node) =>
  ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(node).overflowX);
const name = (n) => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '') +
  (typeof n.className === 'string' && n.className ? '.' + n.className.split(' ').join('.') : '');
const found = [];
for (const node of document.body.querySelectorAll('*')) {
  const box = node.getBoundingClientRect();
  if (!box.width || !box.height || box.right <= width + 1) continue;
  const style = getComputedStyle(node);
  if (style.visibility === 'hidden') continue;
  let inside = false;
  for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
    if (scrolls(up)) { inside = true; break; }
  }
  if (!inside) found.push(name(node) + ' right=' + Math.round(box.right));
}
const page = document.documentElement.scrollWidth;
return {scrollWidth: page, innerWidth: window.innerWidth, found: found.slice(0, 10)};
"""

# Everything folded away (the rule builder's rules, reports) is unfolded, so it is checked too.
UNFOLD = "document.querySelectorAll('main details').forEach((d) => { d.open = true; })"

# The page has drawn what it loaded: nothing in <main> changed for a moment.
SETTLED = "return document.getElementById('main').innerHTML.length"


def set_width(browser: Browser, width: int, height: int | None = None) -> None:
    """Makes the viewport `width` px wide. Not as a "mobile" device: one of those widens its
    layout viewport to fit what overflows (zooming out), which would hide the overflow."""
    phone = width <= 720
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height or (PHONE_HEIGHT if phone else DESKTOP_HEIGHT),
            "deviceScaleFactor": 1,
            "mobile": False,
        },
    )


def settle(browser: Browser) -> None:
    """Waits until the page has drawn what it loaded (its main content stops changing)."""
    browser.wait(lambda d: d.find_element(By.ID, "main").is_displayed(), "the page")
    last: list[int] = [-1]

    def steady() -> bool | None:
        size: int = browser.js(SETTLED)
        same = size == last[0] and size > 0
        last[0] = size
        return True if same else None

    eventually(steady, "the page settled", 30.0, interval=0.7)


def shoot(browser: Browser, name: str, width: int) -> Path:
    """A screenshot of the whole page (up to LONGEST_SHOT px) under the artifacts."""
    folder = ARTIFACTS / "responsive"
    folder.mkdir(parents=True, exist_ok=True)
    height: int = browser.js("return document.documentElement.scrollHeight")
    set_width(browser, width, min(height, LONGEST_SHOT))
    path = folder / f"{name}.png"
    assert browser.driver.save_screenshot(str(path)), f"no screenshot of {name}"
    set_width(browser, width)
    if os.environ.get("LEADFLOW_README_SCREENS"):
        SCREENS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENS / path.name)
    return path
