"""The parts of a tracked nurture email: only the template author's links go through the
click redirect, the unsubscribe link is always there, nothing else is a link."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from domain.tracking import tracked_html, tracked_text, unsubscribe_link

BASE = "https://crm.example.com/"
GUIDE = "https://example.com/guide?ref=nurture"
UNSUBSCRIBE = "https://crm.example.com/t/u/m-1"


class Links(HTMLParser):
    """Every href and src in a document, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "href" and value is not None:
                self.hrefs.append(value)
            if name == "src" and value is not None:
                self.srcs.append(value)

    def handle_data(self, data: str) -> None:
        self.text += data


def parsed(document: str) -> Links:
    links = Links()
    links.feed(document)
    return links


def click(url: str) -> str:
    return f"https://crm.example.com/t/c/m-1?u={quote(url, safe='')}"


def test_only_the_authors_links_are_tracked_and_the_rest_is_text() -> None:
    body = (
        'Hi <b onclick="x">hxxps://evil[.]example/login</b>,\n\n'
        f"our guide: {GUIDE} (and {GUIDE}).\n\nUnsubscribe: {UNSUBSCRIBE}"
    )
    links = parsed(tracked_html(body, [GUIDE], BASE, "m-1"))
    assert links.hrefs == [click(GUIDE), click(GUIDE), UNSUBSCRIBE]
    assert links.srcs == ["https://crm.example.com/t/o/m-1"]
    assert 'Hi <b onclick="x">hxxps://evil[.]example/login</b>,' in links.text


def test_a_body_without_an_unsubscribe_link_gets_one_at_the_end() -> None:
    html = tracked_html("Hi Ann, read https://example.com/a", [], BASE, "m-1")
    assert parsed(html).hrefs == [UNSUBSCRIBE]
    assert tracked_text("Hi Ann", BASE, "m-1") == f"Hi Ann\n\n--\nUnsubscribe: {UNSUBSCRIBE}\n"
    assert tracked_text(f"Bye: {UNSUBSCRIBE}", BASE, "m-1") == f"Bye: {UNSUBSCRIBE}\n"
    assert unsubscribe_link(BASE, "m-1") == UNSUBSCRIBE


@given(st.text(), st.lists(st.sampled_from([GUIDE, "https://example.com/a", "https://x.io"])))
def test_every_link_in_the_html_is_a_tracked_author_link_or_unsubscribe(
    body: str, links: list[str]
) -> None:
    html = tracked_html(body, links, BASE, "m-1")
    allowed = {click(url) for url in links} | {UNSUBSCRIBE}
    document = parsed(html)
    assert set(document.hrefs) <= allowed
    assert UNSUBSCRIBE in document.hrefs
    assert document.srcs == ["https://crm.example.com/t/o/m-1"]
