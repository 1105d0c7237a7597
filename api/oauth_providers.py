"""Sign-in through DingTalk and WeCom (issue #19, docs/access.md): where each provider sends
the browser, and how the code it sends back becomes the provider's id of the person.

- DingTalk: the browser goes to `login.dingtalk.com/oauth2/auth` (scope `openid`); the code
  is exchanged at `POST /v1.0/oauth2/userAccessToken`, and `GET /v1.0/contact/users/me`
  (header `x-acs-dingtalk-access-token`) names the person by `unionId`.
- WeCom: the browser goes to `open.weixin.qq.com/connect/oauth2/authorize` (scope
  `snsapi_base`, the app's `agentid`); the app's token comes from `cgi-bin/gettoken`, and
  `cgi-bin/auth/getuserinfo` names the member by `userid`.

Any failure to reach a provider, or an answer that names nobody, is `ProviderFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

import httpx

from leadflow.settings import Settings

ProviderName = Literal["dingtalk", "wecom"]


class ProviderFailed(Exception):
    """The provider could not be asked, or did not name the person (HTTP 502)."""


class Provider(Protocol):
    @property
    def name(self) -> ProviderName: ...

    @property
    def person_field(self) -> str:
        """The directory field (`domain.directory.Person`) holding the provider's id."""
        ...

    def authorize_url(self, state: str, redirect_uri: str) -> str: ...

    async def identify(self, http: httpx.AsyncClient, code: str) -> str: ...


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderFailed(f"{what} answered {response.status_code} without a JSON object")
    return body


@dataclass(frozen=True)
class DingTalk:
    client_id: str
    client_secret: str
    authorize_base: str
    api_base: str
    name: ProviderName = "dingtalk"
    person_field: str = "dingtalk_user_id"

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = {
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "client_id": self.client_id,
            "scope": "openid",
            "state": state,
            "prompt": "consent",
        }
        return f"{self.authorize_base}?{urlencode(query)}"

    async def identify(self, http: httpx.AsyncClient, code: str) -> str:
        token_response = await http.post(
            f"{self.api_base}/v1.0/oauth2/userAccessToken",
            json={
                "clientId": self.client_id,
                "clientSecret": self.client_secret,
                "code": code,
                "grantType": "authorization_code",
            },
        )
        token = _json(token_response, "DingTalk's token exchange").get("accessToken")
        if token_response.status_code != 200 or not isinstance(token, str):
            raise ProviderFailed(
                f"DingTalk refused the sign-in code ({token_response.status_code}): "
                f"{token_response.text[:200]}"
            )
        me = await http.get(
            f"{self.api_base}/v1.0/contact/users/me",
            headers={"x-acs-dingtalk-access-token": token},
        )
        union_id = _json(me, "DingTalk's users/me").get("unionId")
        if me.status_code != 200 or not isinstance(union_id, str) or not union_id:
            raise ProviderFailed(f"DingTalk did not say who signed in ({me.status_code})")
        return union_id


@dataclass(frozen=True)
class WeCom:
    corp_id: str
    agent_id: str
    secret: str
    authorize_base: str
    api_base: str
    name: ProviderName = "wecom"
    person_field: str = "wecom_user_id"

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = {
            "appid": self.corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": self.agent_id,
        }
        return f"{self.authorize_base}?{urlencode(query)}#wechat_redirect"

    async def identify(self, http: httpx.AsyncClient, code: str) -> str:
        gettoken = await http.get(
            f"{self.api_base}/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )
        token_body = _json(gettoken, "WeCom's gettoken")
        token = token_body.get("access_token")
        if token_body.get("errcode", 0) != 0 or not isinstance(token, str):
            raise ProviderFailed(
                f"WeCom refused the app's credentials: {token_body.get('errmsg', gettoken.text)}"
            )
        info = await http.get(
            f"{self.api_base}/cgi-bin/auth/getuserinfo",
            params={"access_token": token, "code": code},
        )
        body = _json(info, "WeCom's getuserinfo")
        # `userid` for a member of the corp (older answers spell it `UserId`); a visitor
        # from outside has only an `openid`, and nobody in the directory.
        user_id = body.get("userid") or body.get("UserId")
        if body.get("errcode", 0) != 0 or not isinstance(user_id, str) or not user_id:
            raise ProviderFailed(
                f"WeCom did not name a member of the corp: {body.get('errmsg', info.text[:200])}"
            )
        return user_id


def configured_providers(settings: Settings) -> dict[ProviderName, Provider]:
    """The providers whose ids and secret are set, by name."""
    found: dict[ProviderName, Provider] = {}
    if settings.dingtalk_client_id and settings.dingtalk_client_secret is not None:
        found["dingtalk"] = DingTalk(
            settings.dingtalk_client_id,
            settings.dingtalk_client_secret.get_secret_value(),
            settings.dingtalk_authorize_url,
            settings.dingtalk_api_url.rstrip("/"),
        )
    if settings.wecom_corp_id and settings.wecom_agent_id and settings.wecom_secret is not None:
        found["wecom"] = WeCom(
            settings.wecom_corp_id,
            settings.wecom_agent_id,
            settings.wecom_secret.get_secret_value(),
            settings.wecom_authorize_url,
            settings.wecom_api_url.rstrip("/"),
        )
    return found
