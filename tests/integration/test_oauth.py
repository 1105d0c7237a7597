"""Console sign-in through DingTalk and WeCom (issue #19) against a real local HTTP server
that plays both providers (their token and identity endpoints, in their real shapes): the
full flow to a session, a state from another browser refused, an account nobody in the
directory has refused, a person without a user refused, a provider failure answered 502."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from people import ADMIN, create_user
from pydantic import SecretStr

from api.app import create_app
from leadflow.settings import Settings
from store.rulebook import default_directory_document

# The code the fake provider accepts for each account it knows; any other code fails.
DINGTALK_CODES = {
    "code-liu": "union-liu-yang",
    "code-li": "union-li-wei",
    "code-stranger": "union-nobody",
}
WECOM_CODES = {"code-zhao": "ZhaoLei", "code-sun": "SunHui"}
CLIENT_SECRET = "dingtalk-secret"
CORP_SECRET = "wecom-secret"


class FakeProviders(BaseHTTPRequestHandler):
    """DingTalk's `/v1.0/oauth2/userAccessToken` and `/v1.0/contact/users/me`, WeCom's
    `/cgi-bin/gettoken` and `/cgi-bin/auth/getuserinfo`."""

    def answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if urlsplit(self.path).path != "/v1.0/oauth2/userAccessToken":
            self.answer(404, {"code": "NotFound"})
        elif body.get("clientSecret") != CLIENT_SECRET or body.get("code") not in DINGTALK_CODES:
            self.answer(400, {"code": "invalidAuthCode", "message": "the code is not valid"})
        else:
            assert body["grantType"] == "authorization_code" and body["clientId"] == "ding-app"
            self.answer(200, {"accessToken": f"token-{body['code']}", "expireIn": 7200})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/v1.0/contact/users/me":
            token = self.headers.get("x-acs-dingtalk-access-token", "")
            code = token.removeprefix("token-")
            if code not in DINGTALK_CODES:
                self.answer(401, {"code": "InvalidAuthentication"})
            else:
                self.answer(200, {"nick": "someone", "unionId": DINGTALK_CODES[code]})
        elif url.path == "/cgi-bin/gettoken":
            if query.get("corpsecret") != CORP_SECRET or query.get("corpid") != "corp-1":
                self.answer(200, {"errcode": 40001, "errmsg": "invalid credential"})
            else:
                self.answer(200, {"errcode": 0, "errmsg": "ok", "access_token": "wecom-token"})
        elif url.path == "/cgi-bin/auth/getuserinfo":
            code = query.get("code", "")
            if query.get("access_token") != "wecom-token" or code not in WECOM_CODES:
                self.answer(200, {"errcode": 40029, "errmsg": "invalid code"})
            else:
                self.answer(200, {"errcode": 0, "errmsg": "ok", "userid": WECOM_CODES[code]})
        else:
            self.answer(404, {"errcode": 404})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProviders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(settings: Settings, provider_url: str) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "public_url": "http://testserver",
            "dingtalk_client_id": "ding-app",
            "dingtalk_client_secret": SecretStr(CLIENT_SECRET),
            "dingtalk_authorize_url": f"{provider_url}/oauth2/auth",
            "dingtalk_api_url": provider_url,
            "wecom_corp_id": "corp-1",
            "wecom_agent_id": "1000002",
            "wecom_secret": SecretStr(CORP_SECRET),
            "wecom_authorize_url": f"{provider_url}/connect/oauth2/authorize",
            "wecom_api_url": provider_url,
        }
    )
    with TestClient(create_app(configured), follow_redirects=False) as test_client:
        directory = default_directory_document()
        ids = {
            "mgr-east": {"dingtalk_user_id": "union-liu-yang"},
            "mgr-west": {"wecom_user_id": "ZhaoLei"},
            "dir-sales": {"wecom_user_id": "SunHui"},
        }
        for person in directory["people"]:
            person.update(ids.get(person["id"], {}))
        for rep in directory["reps"]:
            if rep["id"] == "rep-east-1":
                rep["dingtalk_user_id"] = "union-li-wei"
        stored = test_client.put("/v1/directory", json=directory, headers=ADMIN)
        assert stored.status_code == 200, stored.text
        create_user(test_client, "liu@example.com", "manager", "mgr-east")
        create_user(test_client, "zhao@example.com", "manager", "mgr-west")
        create_user(test_client, "li@example.com", "rep", "rep-east-1")
        yield test_client


def started(client: TestClient, provider: str) -> dict[str, str]:
    """Start a sign-in; the query of the provider's authorize URL it redirects to."""
    answered = client.get(f"/auth/{provider}")
    assert answered.status_code == 302
    cookie = answered.headers["set-cookie"]
    assert cookie.startswith("leadflow_oauth_state=") and "HttpOnly" in cookie
    return {k: v[0] for k, v in parse_qs(urlsplit(answered.headers["location"]).query).items()}


def test_the_console_learns_which_providers_are_set_up(
    client: TestClient, settings: Settings
) -> None:
    assert client.get("/v1/session/providers").json() == {"providers": ["dingtalk", "wecom"]}
    with TestClient(create_app(settings)) as plain:
        assert plain.get("/v1/session/providers").json() == {"providers": []}
        assert plain.get("/auth/dingtalk", follow_redirects=False).status_code == 404


def test_a_manager_signs_in_through_dingtalk(client: TestClient) -> None:
    query = started(client, "dingtalk")
    assert query["client_id"] == "ding-app" and query["response_type"] == "code"
    assert query["scope"] == "openid"
    assert query["redirect_uri"] == "http://testserver/auth/dingtalk/callback"
    back = client.get(
        "/auth/dingtalk/callback", params={"code": "code-liu", "state": query["state"]}
    )
    assert back.status_code == 302, back.text
    assert back.headers["location"] == "/"
    assert "leadflow_session=" in back.headers["set-cookie"]
    who = client.get("/v1/session")
    assert who.status_code == 200
    assert (who.json()["user"]["login"], who.json()["user"]["role"]) == (
        "liu@example.com",
        "manager",
    )


def test_a_rep_signs_in_through_dingtalk(client: TestClient) -> None:
    query = started(client, "dingtalk")
    back = client.get(
        "/auth/dingtalk/callback", params={"code": "code-li", "state": query["state"]}
    )
    assert back.status_code == 302, back.text
    who = client.get("/v1/session").json()["user"]
    assert (who["login"], who["role"], who["person_id"]) == ("li@example.com", "rep", "rep-east-1")


def test_a_manager_signs_in_through_wecom(client: TestClient) -> None:
    query = started(client, "wecom")
    assert (query["appid"], query["agentid"], query["scope"]) == (
        "corp-1",
        "1000002",
        "snsapi_base",
    )
    back = client.get("/auth/wecom/callback", params={"code": "code-zhao", "state": query["state"]})
    assert back.status_code == 302, back.text
    assert client.get("/v1/session").json()["user"]["login"] == "zhao@example.com"


def test_a_state_from_another_browser_is_refused(client: TestClient) -> None:
    query = started(client, "dingtalk")
    wrong = client.get("/auth/dingtalk/callback", params={"code": "code-liu", "state": "forged"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "oauth_state_mismatch"
    client.cookies.clear()  # another browser: no state cookie at all
    other = client.get(
        "/auth/dingtalk/callback", params={"code": "code-liu", "state": query["state"]}
    )
    assert other.status_code == 403
    assert client.get("/v1/session").status_code == 401


def test_an_account_nobody_in_the_directory_has_is_refused(client: TestClient) -> None:
    query = started(client, "dingtalk")
    back = client.get(
        "/auth/dingtalk/callback", params={"code": "code-stranger", "state": query["state"]}
    )
    assert back.status_code == 403
    assert back.json()["error"]["code"] == "no_person_for_account"


def test_a_person_without_a_user_is_refused(client: TestClient) -> None:
    query = started(client, "wecom")
    back = client.get("/auth/wecom/callback", params={"code": "code-sun", "state": query["state"]})
    assert back.status_code == 403
    assert back.json()["error"]["code"] == "no_user_for_person"
    assert "dir-sales" in back.json()["error"]["message"]


def test_a_provider_refusing_the_code_is_a_502_saying_so(client: TestClient) -> None:
    query = started(client, "dingtalk")
    back = client.get(
        "/auth/dingtalk/callback", params={"code": "expired", "state": query["state"]}
    )
    assert back.status_code == 502
    assert back.json()["error"]["code"] == "provider_failed"
    assert "DingTalk refused the sign-in code" in back.json()["error"]["message"]
    query = started(client, "wecom")
    back = client.get("/auth/wecom/callback", params={"code": "expired", "state": query["state"]})
    assert back.status_code == 502
    assert "invalid code" in back.json()["error"]["message"]
