"""Headless Debian Chromium for the browser tests (the console, /docs and /redoc): one way
to start it, with the options every test wants and those a test adds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    "--lang=en-US",
)


def start_chromium(
    more_arguments: Iterable[str] = (), logs: Mapping[str, str] | None = None
) -> webdriver.Chrome:
    """A started Chromium (the caller quits it); `logs`: the logs it keeps, by type."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: `make install` installs chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*ARGUMENTS, *more_arguments):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", dict(logs or {"browser": "ALL"}))
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
