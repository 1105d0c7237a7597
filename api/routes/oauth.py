"""Console sign-in through DingTalk and WeCom where configured (issue #19, docs/access.md).

`GET /auth/{provider}` sends the browser to the provider with a random `state`, which a
short-lived HttpOnly cookie binds to this browser; `GET /auth/{provider}/callback` checks
the state, asks the provider who signed in, finds the directory person with that provider
id (`dingtalk_user_id` / `wecom_user_id`) and the user linked to them, opens a session and
sends the browser to the console. Nobody is provisioned: a person without a user is refused
(403 `no_user_for_person`) until an admin creates one.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.oauth_providers import Provider, ProviderFailed, ProviderName, configured_providers
from api.responses import answer, refused
from api.sessions import session_cookies, with_cookies
from api.user_responses import SignInProviders
from domain.directory import Person, Rep
from leadflow.bootstrap import Store
from leadflow.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["session"])

STATE_COOKIE = "leadflow_oauth_state"
STATE_SECONDS = 600
NAMES = {"dingtalk": "DingTalk", "wecom": "WeCom"}


@router.get("/v1/session/providers", response_model=answer(SignInProviders), responses=refused(422))
async def providers(settings: SettingsDep) -> dict[str, Any]:
    """The providers this server offers sign-in through (`/auth/{provider}`): `dingtalk`,
    `wecom`, or none."""
    return {"providers": sorted(configured_providers(settings))}


def _provider(settings: Settings, name: ProviderName) -> Provider:
    found = configured_providers(settings).get(name)
    if found is None:
        raise ApiError(404, "provider_not_configured", f"sign-in through {name} is not set up")
    return found


def _redirect_uri(settings: Settings, name: str) -> str:
    return f"{settings.public_url.rstrip('/')}/auth/{name}/callback"


@router.get("/auth/{provider}", include_in_schema=False)
async def start(provider: ProviderName, settings: SettingsDep) -> RedirectResponse:
    chosen = _provider(settings, provider)
    state = secrets.token_urlsafe(24)
    secure = settings.public_url.startswith("https://")
    target = chosen.authorize_url(state, _redirect_uri(settings, provider))
    response = RedirectResponse(target, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/auth",
    )
    return response


@router.get("/auth/{provider}/callback", include_in_schema=False)
async def callback(
    provider: ProviderName,
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    code: Annotated[str, Query(min_length=1, max_length=500)],
    state: Annotated[str, Query(min_length=1, max_length=200)],
) -> RedirectResponse:
    chosen = _provider(settings, provider)
    expected = request.cookies.get(STATE_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), state.encode()):
        raise ApiError(
            403,
            "oauth_state_mismatch",
            "this sign-in was not started in this browser (or took over 10 minutes): "
            "start again from the console",
        )
    try:
        async with httpx.AsyncClient(timeout=settings.oauth_timeout_seconds) as http:
            account = await chosen.identify(http, code)
    except httpx.HTTPError as exc:
        log.warning("sign-in through %s failed: %s", provider, exc)
        raise ApiError(
            502, "provider_unreachable", f"{NAMES[provider]} did not answer: {exc}"
        ) from exc
    except ProviderFailed as exc:
        log.warning("sign-in through %s failed: %s", provider, exc)
        raise ApiError(502, "provider_failed", str(exc)) from exc
    session_id = await run_in_threadpool(_open_session, store, chosen, account)
    response = RedirectResponse("/", status_code=302)
    secure = request.url.scheme == "https" or settings.public_url.startswith("https://")
    with_cookies(response, session_cookies(session_id, secure))
    response.delete_cookie(STATE_COOKIE, path="/auth")
    return response


def _open_session(store: Store, provider: Provider, account: str) -> str:
    directory = store.rulebook.directory()
    people: list[Person | Rep] = [*directory.people, *directory.reps]
    person = next((p for p in people if getattr(p, provider.person_field) == account), None)
    if person is None:
        raise ApiError(
            403,
            "no_person_for_account",
            f"no one in the sales directory has the {NAMES[provider.name]} id {account!r}: "
            f"an admin sets it as their {provider.person_field}",
        )
    user = store.users.by_person(person.id)
    if user is None or user.disabled:
        raise ApiError(
            403,
            "no_user_for_person",
            f"{person.name} has no console user (or it is disabled): an admin creates one "
            f"with person_id {person.id!r}",
        )
    return store.users.open_session(user, datetime.now(UTC)).session_id
