"""The embeddable snippet and the QR codes of a hosted form (docs/forms.md), on a real app:
the snippet carries the active version, a fresh token and where to post; the QR codes
decode (OpenCV) to the form's address with the campaign and channel filled in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from xml.etree import ElementTree

import cv2
import numpy
import pytest
from fastapi.testclient import TestClient
from forms_support import ADMIN, contact_form

from api.app import create_app
from intake.qr import form_url
from leadflow.settings import Settings


@pytest.fixture
def database_url() -> None:
    """SQLite only: nothing here depends on the store beyond reading the form."""
    return None


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    changed = settings.model_copy(update={"public_url": "https://leads.example.com"})
    with TestClient(create_app(changed)) as test_client:
        test_client.post("/v1/forms", json=contact_form(), headers=ADMIN)
        yield test_client


def decode_png(png: bytes) -> str:
    image = cv2.imdecode(numpy.frombuffer(png, numpy.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a PNG"
    text: str = cv2.QRCodeDetectorAruco().detectAndDecode(image)[0]
    return text


def decode_svg(svg: bytes) -> str:
    """Draw the SVG's one path (squares `M x,y H x2 V y2 H x z` in a viewBox of modules)
    as a bitmap and decode it."""
    root = ElementTree.fromstring(svg)
    width = int(float(root.attrib["viewBox"].split()[2]))
    [path] = [e for e in root.iter() if e.tag.endswith("path")]
    image = numpy.full((width, width), 255, numpy.uint8)
    for x, y, x2, y2 in re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.attrib["d"]):
        image[int(y) : int(y2), int(x) : int(x2)] = 0
    scaled = cv2.resize(image, None, fx=10, fy=10, interpolation=cv2.INTER_NEAREST)
    text: str = cv2.QRCodeDetectorAruco().detectAndDecode(cv2.cvtColor(scaled, cv2.COLOR_GRAY2BGR))[
        0
    ]
    return text


def test_the_qr_codes_open_the_form_with_campaign_and_channel(client: TestClient) -> None:
    query = "?campaign=expo-2026&channel=booth"
    expected = form_url(
        "https://leads.example.com", "contact-us", campaign="expo-2026", channel="booth"
    )
    assert expected == "https://leads.example.com/f/contact-us?campaign=expo-2026&channel=booth"
    png = client.get("/f/contact-us/qr.png" + query)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_png(png.content) == expected
    svg = client.get("/f/contact-us/qr.svg" + query)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert decode_svg(svg.content) == expected
    assert decode_png(client.get("/f/contact-us/qr.png").content) == (
        "https://leads.example.com/f/contact-us"
    )
    # What the code opens is the page with them filled in.
    page = client.get(expected.removeprefix("https://leads.example.com")).text
    assert 'name="campaign" value="expo-2026"' in page and 'name="channel" value="booth"' in page


def test_qr_codes_refuse_unknown_forms_and_hostile_parameters(client: TestClient) -> None:
    assert client.get("/f/nope/qr.png").status_code == 404
    assert client.get("/f/nope/qr.svg").status_code == 404
    assert client.get("/f/contact-us/qr.gif").status_code == 422  # PNG or SVG only
    for query in ("?campaign=" + "x" * 101, "?channel=a%20b", "?campaign=%3Cscript%3E", "?lang=fr"):
        answer = client.get("/f/contact-us/qr.svg" + query)
        assert answer.status_code == 422, query
        assert answer.json()["error"]["code"] == "invalid_request"


def test_the_snippet_carries_the_active_version_a_token_and_where_to_post(
    client: TestClient,
) -> None:
    answer = client.get("/f/contact-us.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/javascript")
    assert answer.headers["cache-control"].startswith("no-store")
    script = answer.text
    config = json.loads(script[script.rindex("})(") + 3 : script.rindex(");")])
    assert config["action"] == "http://testserver/f/contact-us"
    assert re.fullmatch(r"\d+\.[0-9a-f]{16}\.[A-Za-z0-9_-]{24}", config["token"])
    assert [f["name"] for f in config["form"]["fields"]][:2] == ["full_name", "email"]
    assert config["form"]["consent"]["text"]["zh-CN"] == "我同意被联系。"
    # Each load has its own token.
    assert client.get("/f/contact-us.js").text != script
    missing = client.get("/f/nope.js")
    assert missing.status_code == 404 and missing.text.startswith("/*")


def test_no_value_in_a_form_can_close_the_snippets_script(client: TestClient) -> None:
    hostile = contact_form(id="hostile", title={"en": "</script><script>alert(1)</script>"})
    client.post("/v1/forms", json=hostile, headers=ADMIN)
    script = client.get("/f/hostile.js").text
    assert "</script>" not in script and "\\u003c/script\\u003e" in script
