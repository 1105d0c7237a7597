"""What keeps bots from filling leadflow with leads through its public forms
(docs/forms.md, "Abuse controls"):

- a fill token: signed (HMAC-SHA256 with the API's form secret) and timestamped, rendered
  into each page and snippet; a submission without a valid one, or sent sooner than the
  form's `min_fill_seconds` after the page was served, is spam. A token also names the
  submission for idempotency: a double click, or a bot replaying one token, makes one lead.
- a honeypot input (`homepage`) that people do not see and bots fill;
- a per-address rate limit, kept in each API process's memory (each replica counts on
  its own);
- optionally a captcha provider's verification, in the siteverify shape Cloudflare
  Turnstile and hCaptcha share (`secret`, `response`, `remoteip` → `{"success": bool}`).

Spam is dropped: never appended, counted by form and reason
(`leadflow_form_spam_dropped_total`), and answered exactly like a success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import httpx
from prometheus_client import Counter

from domain.errors import DomainError

# A page older than this is refused as expired (re-rendered with a fresh token), not spam.
TOKEN_MAX_AGE_SECONDS = 24 * 3600
# A token issued this far ahead of the clock is forged (or from a replica whose clock is off).
TOKEN_CLOCK_SKEW_SECONDS = 60
HONEYPOT = "homepage"
TOKEN_FIELD = "_lf_token"
CAPTCHA_FIELDS = ("captcha_token", "cf-turnstile-response", "h-captcha-response")
DEFAULT_SUBMISSIONS_PER_MINUTE = 20
TRACKED_ADDRESSES = 10_000

SPAM_DROPPED = Counter(
    "leadflow_form_spam_dropped",
    "Form submissions dropped as spam (never stored, answered like a success), by form and "
    "reason: honeypot, token (missing or forged), too_fast, token_reused, captcha",
    ["form_id", "reason"],
)
SUBMISSIONS = Counter(
    "leadflow_form_submissions",
    "Form submissions by form and outcome: accepted, invalid, expired, spam, origin_refused, "
    "rate_limited",
    ["form_id", "outcome"],
)


class TokenVerdict(Enum):
    VALID = "valid"
    MISSING = "missing"
    FORGED = "forged"
    TOO_FAST = "too_fast"
    EXPIRED = "expired"

    @property
    def spam_reason(self) -> str | None:
        """The reason a submission with this verdict is dropped as spam, if it is."""
        return {"missing": "token", "forged": "token", "too_fast": "too_fast"}.get(self.value)


class CaptchaUnavailable(DomainError):
    """The captcha provider could not be asked; the visitor may retry (HTTP 503)."""

    code = "captcha_unavailable"


def _signature(secret: bytes, form_id: str, issued: int, nonce: str) -> str:
    digest = hmac.new(secret, f"{form_id}.{issued}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def issue_token(secret: bytes, form_id: str, now: float) -> str:
    """A fill token for `form_id`, issued at `now` (Unix seconds)."""
    issued = int(now)
    nonce = secrets.token_hex(8)
    return f"{issued}.{nonce}.{_signature(secret, form_id, issued, nonce)}"


def check_token(
    secret: bytes, form_id: str, token: object, now: float, min_fill_seconds: int
) -> TokenVerdict:
    """Whether `token` was issued by this API for `form_id`, at least `min_fill_seconds`
    and at most TOKEN_MAX_AGE_SECONDS before `now`."""
    if not isinstance(token, str) or not token:
        return TokenVerdict.MISSING
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 12 or len(token) > 100:
        return TokenVerdict.FORGED
    issued, nonce, signature = int(parts[0]), parts[1], parts[2]
    if not hmac.compare_digest(signature, _signature(secret, form_id, issued, nonce)):
        return TokenVerdict.FORGED
    age = now - issued
    if age < -TOKEN_CLOCK_SKEW_SECONDS:
        return TokenVerdict.FORGED
    if age < min_fill_seconds:
        return TokenVerdict.TOO_FAST
    if age > TOKEN_MAX_AGE_SECONDS:
        return TokenVerdict.EXPIRED
    return TokenVerdict.VALID


class SubmissionRateLimit:
    """At most `limit` submissions per `window_seconds` from one address; the next is
    refused until the oldest leaves the window. In memory: each API process counts alone."""

    def __init__(
        self,
        limit: int = DEFAULT_SUBMISSIONS_PER_MINUTE,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, address: str) -> int | None:
        """Count a submission from `address`: None if admitted, else the whole seconds
        until it may submit again (the refused attempt is not counted)."""
        now = self.clock()
        seen = self._seen.get(address)
        if seen is None:
            if len(self._seen) >= TRACKED_ADDRESSES:
                self._forget_before(now - self.window_seconds)
            seen = self._seen[address] = deque(maxlen=self.limit)
        if len(seen) == self.limit:
            left = seen[0] + self.window_seconds - now
            if left > 0:
                return max(1, math.ceil(left))
        seen.append(now)
        return None

    def _forget_before(self, moment: float) -> None:
        for address in [a for a, seen in self._seen.items() if not seen or seen[-1] <= moment]:
            del self._seen[address]


@dataclass(frozen=True)
class Captcha:
    """A captcha provider: where the page loads its widget, and where answers are verified."""

    verify_url: str
    secret: str
    site_key: str | None = None
    script_url: str | None = None

    async def verify(self, response: object, remote_ip: str | None) -> bool:
        """Whether the provider accepts the visitor's `response`; CaptchaUnavailable when
        it cannot be asked or answers what is not a verdict."""
        if not isinstance(response, str) or not response or len(response) > 4096:
            return False
        form = {"secret": self.secret, "response": response}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                answer = await client.post(self.verify_url, data=form)
            answer.raise_for_status()
            verdict = answer.json()
        except (httpx.HTTPError, ValueError) as failed:
            raise CaptchaUnavailable("the captcha could not be verified; try again") from failed
        if not isinstance(verdict, dict):
            raise CaptchaUnavailable("the captcha could not be verified; try again")
        return verdict.get("success") is True


@dataclass
class FormGuard:
    """The abuse controls of one API process, built by the composition root."""

    secret: bytes
    rate_limit: SubmissionRateLimit
    captcha: Captcha | None = None
    clock: Callable[[], float] = time.time

    def issue(self, form_id: str) -> str:
        return issue_token(self.secret, form_id, self.clock())

    def check(self, form_id: str, token: object, min_fill_seconds: int) -> TokenVerdict:
        return check_token(self.secret, form_id, token, self.clock(), min_fill_seconds)
