"""Rendering templates for each target: only the template author's URLs are links, and
lead data is inert (defanged text, full-width markdown) wherever it lands."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rules.builtin_templates import BUILTIN_TEMPLATES
from rules.model import Template
from rules.templates import (
    LeadflowUrl,
    as_is,
    inert_markdown,
    inert_text,
    render,
)

EVIL = "https://evil.example/login"
OFFER = Template(
    subject="An offer for {name}",
    body="Hi {name},\n\nyour offer: https://example.com/offer?lead={lead_id}&from={name}.",
)


def test_a_url_in_a_lead_field_reads_defanged_and_is_no_link() -> None:
    message = render(BUILTIN_TEMPLATES["welcome"], {"name": EVIL})
    assert message.subject == "Welcome, hxxps://evil[.]example/login"
    assert "Hi hxxps://evil[.]example/login," in message.body
    assert "evil.example" not in message.subject + message.body
    assert message.links == ()


def test_only_the_authors_urls_are_links_with_field_values_url_quoted() -> None:
    message = render(OFFER, {"name": "Ann / Co & Sons", "lead_id": "lead-1"})
    # The sentence's full stop is not part of the link.
    assert message.links == (
        "https://example.com/offer?lead=lead-1&from=Ann%20%2F%20Co%20%26%20Sons",
    )
    assert message.body.endswith(f"your offer: {message.links[0]}.")
    assert message.body.startswith("Hi Ann / Co & Sons,")


def test_a_lead_field_holding_a_url_cannot_steer_the_authors_link() -> None:
    message = render(OFFER, {"name": EVIL, "lead_id": "lead-1"})
    [link] = message.links
    assert urlsplit(link).netloc == "example.com"
    assert parse_qs(urlsplit(link).query) == {"lead": ["lead-1"], "from": [EVIL]}


def test_a_url_whose_host_is_a_placeholder_is_no_link_and_reads_defanged() -> None:
    template = Template(
        subject="s", body="Visit https://{company}/welcome or https://example.com{x}"
    )
    message = render(template, {"company": "evil.example", "x": ".evil.example"})
    assert message.links == ()
    assert message.body == (
        "Visit hxxps://evil[.]example/welcome or hxxps://example[.]com[.]evil[.]example"
    )


def test_leadflows_own_urls_are_written_as_they_are_and_plain_strings_are_not() -> None:
    own = "https://crm.example.com/t/u/m-1"
    template = Template(subject="s", body="Unsubscribe: {unsubscribe_url}\n{lead_url}")
    message = render(template, {"unsubscribe_url": LeadflowUrl(own), "lead_url": own})
    assert message.body == f"Unsubscribe: {own}\nhxxps://crm[.]example[.]com/t/u/m-1"
    assert message.links == ()  # leadflow's own URLs are not click-tracked


def test_robot_markdown_keeps_the_authors_markup_and_makes_lead_data_full_width() -> None:
    template = Template(subject="New lead: {name}", body="**{name}** from {company}\n> {note}")
    fields = {
        "name": "[click](https://evil.example/x)",
        "company": "<@all> ![x](y) # Boss",
        "note": "a_b *c* `d` |e| ~f~ & g\n# heading",
    }
    message = render(template, fields, escape=inert_markdown)
    assert message.subject == "New lead: ［click］（hxxps://evil［.］example/x）"
    assert message.body == (
        "**［click］（hxxps://evil［.］example/x）** from ＜@all＞ ！［x］（y） ＃ Boss\n"
        "> a＿b ＊c＊ ｀d｀ ｜e｜ ～f～ ＆ g ＃ heading"
    )


def test_the_generic_webhook_gets_lead_data_as_it_is() -> None:
    message = render(BUILTIN_TEMPLATES["welcome"], {"name": EVIL}, escape=as_is)
    assert message.subject == f"Welcome, {EVIL}"


@pytest.mark.parametrize(
    ("value", "inert"),
    [
        ("https://evil.example/x", "hxxps://evil[.]example/x"),
        ("HTTP://EVIL.EXAMPLE", "HXXP://EVIL[.]EXAMPLE"),
        ("evil.example/login", "evil[.]example/login"),
        ("www.evil.example", "www[.]evil[.]example"),
        ("ftp://files.evil.example", "ftp[:]//files[.]evil[.]example"),
        ("dingtalk://dingtalkclient/page", "dingtalk[:]//dingtalkclient/page"),
        ("http://10.0.0.1:8080/admin", "hxxp://10[.]0[.]0[.]1:8080/admin"),
        ("login at 10.0.0.1", "login at 10[.]0[.]0[.]1"),
        ("https://paypal.com@evil.example", "hxxps://paypal[.]com@evil[.]example"),
        ("evil.例子", "evil[.]例子"),
        # An email address stays whole (a mailto link opens no page); one with a path does not.
        ("Write to ann.lee+x@mail.acme.io.", "Write to ann.lee+x@mail.acme.io."),
        ("ann@evil.example/login", "ann@evil[.]example/login"),
        # Ordinary text is left alone.
        ("Ann Lee", "Ann Lee"),
        ("Acme Co. Ltd, v3.5", "Acme Co. Ltd, v3.5"),
        ("李伟。上海", "李伟。上海"),
    ],
)
def test_defanging(value: str, inert: str) -> None:
    assert inert_text(value) == inert


@given(st.text())
def test_defanged_text_has_no_web_scheme_and_settles(value: str) -> None:
    inert = inert_text(value)
    assert not re.search(r"(?i)https?:", inert)
    assert all(re.search(r"(?i)hxxps?$", inert[: m.start()]) for m in re.finditer("://", inert)), (
        inert
    )
    assert inert_text(inert) == inert


@given(st.text().map(lambda text: text.replace("@", " ")))
def test_defanged_text_without_an_address_has_no_domain(value: str) -> None:
    assert not re.search(r"\.[^\W\d_]", inert_text(value))


@given(st.text())
def test_text_without_dots_or_colons_is_not_changed(value: str) -> None:
    assume("." not in value and ":" not in value)
    assert inert_text(value) == value


@given(st.text())
def test_robot_markdown_from_lead_data_has_no_markup_and_one_line(value: str) -> None:
    inert = inert_markdown(value)
    assert not set(inert) & set("[]()<>*_#`!|~&\\")
    assert len(inert.splitlines()) <= 1


@given(st.dictionaries(st.sampled_from(["name", "company", "lead_id"]), st.text()))
def test_lead_data_never_makes_a_link_or_moves_the_authors(fields: dict[str, str]) -> None:
    message = render(OFFER, fields)
    [link] = message.links
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "example.com", "/offer")
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query == {
        "lead": [fields.get("lead_id", "{lead_id}")],
        "from": [fields.get("name", "{name}")],
    }
    no_links = Template(subject="{name}", body="{name} at {company}: {lead_id}")
    assert render(no_links, fields).links == ()
