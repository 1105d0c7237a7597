"""The console's word catalogs (api/console/static/locales/<locale>/<namespace>.js) agree
with each other and with the pages that use them, read without a browser:

- every key of a namespace is in both languages, with the same `{placeholders}`, and a
  plural entry has the forms its language needs (`one` and `other` in English, `other` in
  Chinese); no key is in two namespaces (one would hide the other on a page);
- every `t("key")` with a literal key in a page's scripts, and every `data-i18n*` key in
  its templates, is in a catalog the page loads (`common` and its `startPage` namespaces);
- no English a person would read is left in a converted page's scripts or templates.

Limits, by design of a regex reading: a catalog must be a plain object literal of
double-quoted strings and `{one, other}` objects (anything else fails loudly here); a key
built at run time (`t(\\`x.${y}\\`)`) is not checked, so pages pick words from literal keys
(`{retrying: t("…retrying")}`); English is found as two or more words in a string literal,
outside comments, `t()` keys (dotted names), `throw new Error(…)` and `console.*(…)`
messages, class names (`class: "…"`) and selectors (`querySelector(…)`), so a single
English word in a literal, or a class list built another way, is not caught.
"""

from __future__ import annotations

import json
import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "api" / "console"
STATIC = CONSOLE / "static"
TEMPLATES = CONSOLE / "templates"
LOCALES = ("en", "zh-CN")
PLURAL_FORMS = {"en": {"one", "other"}, "zh-CN": {"other"}}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def parse_catalog(path: Path) -> dict[str, Any]:
    """The object a catalog module exports, read as JSON after quoting its bare keys."""
    text = path.read_text(encoding="utf-8")
    body = text[text.index("export default") + len("export default") :].strip().rstrip(";")
    body = "\n".join(line for line in body.splitlines() if not line.strip().startswith("//"))
    body = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', body)  # {one: → {"one":
    body = re.sub(r",(\s*[}\]])", r"\1", body)  # trailing commas
    catalog: dict[str, Any] = json.loads(body)
    return catalog


@cache
def catalogs() -> dict[str, dict[str, dict[str, Any]]]:
    """Catalogs by namespace, then locale."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for locale in LOCALES:
        for path in sorted((STATIC / "locales" / locale).glob("*.js")):
            found.setdefault(path.stem, {})[locale] = parse_catalog(path)
    return found


def placeholders(entry: str | dict[str, str]) -> set[str]:
    texts = entry.values() if isinstance(entry, dict) else [entry]
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def test_every_namespace_has_both_languages_with_the_same_keys() -> None:
    assert "common" in catalogs()
    for namespace, by_locale in catalogs().items():
        assert set(by_locale) == set(LOCALES), f"{namespace}: only {sorted(by_locale)}"
        english, chinese = by_locale["en"], by_locale["zh-CN"]
        assert sorted(set(english) - set(chinese)) == [], f"{namespace}: missing in zh-CN"
        assert sorted(set(chinese) - set(english)) == [], f"{namespace}: missing in en"


def test_placeholders_and_plural_forms_match() -> None:
    for namespace, by_locale in catalogs().items():
        for key, english in by_locale["en"].items():
            chinese = by_locale["zh-CN"][key]
            where = f"{namespace}: {key}"
            assert placeholders(english) == placeholders(chinese), where
            assert isinstance(english, dict) == isinstance(chinese, dict), where
            for locale, entry in (("en", english), ("zh-CN", chinese)):
                assert isinstance(entry, str | dict), where
                if isinstance(entry, dict):
                    assert set(entry) == PLURAL_FORMS[locale], f"{where} ({locale})"
                    assert all(isinstance(form, str) for form in entry.values()), where


def test_no_key_is_in_two_namespaces() -> None:
    seen: dict[str, str] = {}
    for namespace, by_locale in catalogs().items():
        for key in by_locale["en"]:
            assert key not in seen, f"{key} is in {seen.get(key)} and {namespace}"
            seen[key] = namespace


# --- the pages -------------------------------------------------------------------------

IMPORT = re.compile(r"""^\s*import\s[^;]*?from\s+"\./([\w.-]+\.js)";""", re.M | re.S)
SCRIPT = re.compile(r'<script[^>]*\ssrc="\$static/([\w.-]+\.js)"')
NAMESPACES = re.compile(r"namespaces:\s*\[([^\]]*)\]")
T_CALL = re.compile(r"\bt\(\s*([^,()]*)")
QUOTED = re.compile(r'"([^"\\]*)"')
KEY = re.compile(r'"([\w-]+(?:\.[\w-]+)+)"')  # keys are dotted: "rulesets.valid"
DATA_I18N = re.compile(r'data-i18n(?:-[\w-]+)?="([^"]+)"')


def pages() -> list[str]:
    return sorted(p.stem for p in TEMPLATES.glob("*.html") if p.stem != "shell")


def scripts_of(page: str) -> set[str]:
    """The page's own module, the scripts its template loads, and all they import."""
    todo = [f"{page}.js", *SCRIPT.findall((TEMPLATES / f"{page}.html").read_text())]
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in found or not (STATIC / name).exists():
            continue
        found.add(name)
        todo += IMPORT.findall((STATIC / name).read_text(encoding="utf-8"))
    return found


def namespaces_of(page: str) -> set[str]:
    source = (STATIC / f"{page}.js").read_text(encoding="utf-8")
    named = {n for match in NAMESPACES.findall(source) for n in QUOTED.findall(match)}
    return {"common", *named}


def keys_in(namespaces: set[str]) -> set[str]:
    return {key for n in namespaces for key in catalogs().get(n, {}).get("en", {})}


def code_only(source: str) -> str:
    """`source` without its comments (a `//` inside a string or URL is kept)."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(^|[^:\"'`\\])//[^\n]*", r"\1", source)


def literal_keys(source: str) -> set[str]:
    """The keys of `t(...)` calls whose key is a literal (or literals, in a `?:`)."""
    return {k for arg in T_CALL.findall(code_only(source)) for k in KEY.findall(arg)}


@pytest.mark.parametrize("page", pages())
def test_every_literal_key_a_page_uses_is_in_its_catalogs(page: str) -> None:
    known = keys_in(namespaces_of(page))
    for namespace in namespaces_of(page):
        assert namespace in catalogs(), f"{page} loads {namespace}, which has no catalog"
    missing = {
        f"{script}: {key}"
        for script in scripts_of(page)
        for key in literal_keys((STATIC / script).read_text(encoding="utf-8"))
        if key not in known
    }
    for template in (TEMPLATES / "shell.html", TEMPLATES / f"{page}.html"):
        missing |= {
            f"{template.name}: {k}"
            for k in DATA_I18N.findall(template.read_text())
            if k not in known
        }
    assert not missing, f"{page}: keys in no catalog it loads: {sorted(missing)}"


def test_the_pages_scripts_are_found() -> None:
    # The reading above is only as good as its regexes: the rulesets page's modules.
    assert {"rulesets.js", "trials.js", "rule-builder.js", "duration-input.js"} <= scripts_of(
        "rulesets"
    )
    assert namespaces_of("rulesets") == {"common", "rulesets"}
    assert "rulesets.diff.none" in literal_keys((STATIC / "rulesets.js").read_text())
    assert {"rulesets.activated", "rulesets.rolledBack"} <= literal_keys(
        (STATIC / "rulesets.js").read_text()
    )


# --- English left outside the catalogs -------------------------------------------------

STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`|\'((?:[^\'\\\n]|\\.)*)\'')
PROSE = re.compile(r"[A-Za-z]{2,}[,.:;!?]?\s+(?:[A-Za-z]{2,}|\d)")
# Text for developers (errors thrown, logs) and for the browser (class names, selectors):
# the code just before the literal.
NOT_SHOWN = re.compile(
    r"(?:new Error|console\.\w+|querySelector(?:All)?|closest)\(\s*$"
    r"|(?:\bclass|className)\s*[:=]\s*$"
)


def english_in_script(source: str) -> list[str]:
    code = code_only(source)
    found = []
    for match in STRING.finditer(code):
        text = next(g for g in match.groups() if g is not None)
        text = re.sub(r"\$\{[^}]*\}", " ", text)
        if not PROSE.search(text) or "=>" in text or NOT_SHOWN.search(code[: match.start()]):
            continue
        found.append(text)
    return found


class _Words(HTMLParser):
    """Text in a template outside any element marked `data-i18n`."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: does it (or a parent) translate?
        self.loose: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        marked = any(name == "data-i18n" or name == "lang" for name, _ in attrs)
        if tag not in {"input", "meta", "link", "br", "img"}:
            self.stack.append(marked or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in {"input", "meta", "link", "br", "img"} and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        words = " ".join(data.split())
        inside = bool(self.stack) and self.stack[-1]
        if re.search(r"[A-Za-z]{2,}", words) and not inside and "$" not in words:
            self.loose.append(words)


@pytest.mark.parametrize("page", sorted(pages()))
def test_no_english_outside_the_catalogs(page: str) -> None:
    shared = {"console.js", "i18n.js"}  # checked with the shell below
    loose = {
        f"{script}: {text!r}"
        for script in scripts_of(page) - shared
        for text in english_in_script((STATIC / script).read_text(encoding="utf-8"))
    }
    words = _Words()
    words.feed((TEMPLATES / f"{page}.html").read_text(encoding="utf-8"))
    loose |= {f"{page}.html: {text!r}" for text in words.loose}
    assert not loose, f"English outside the catalogs: {sorted(loose)}"


def test_the_shell_speaks_through_the_catalogs() -> None:
    words = _Words()
    words.feed((TEMPLATES / "shell.html").read_text(encoding="utf-8"))
    # The brand is a name, not a word to translate.
    assert [text for text in words.loose if text != "leadflow"] == []


def test_the_english_finder_finds_english() -> None:
    assert english_in_script('say(status, "Nothing was saved.");') == ["Nothing was saved."]
    assert english_in_script("el('p', {}, `Version ${v} is active`)") != []
    assert english_in_script('t("rulesets.valid"); // a comment in English words') == []
    assert english_in_script('throw new Error("unknown locale " + x);') == []
    assert english_in_script('el("li", { class: "rule card" }, name)') == []
