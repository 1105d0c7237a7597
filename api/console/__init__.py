"""The web console (SPEC §7, §9): HTML pages and their static scripts, served by the API.

The pages carry no data and need no key; their scripts ask for an API key, keep it in the
tab's session storage and call the public API with it, like any other client.
"""

from api.console.pages import STATIC_DIR, STATIC_URL, router

__all__ = ["STATIC_DIR", "STATIC_URL", "router"]
