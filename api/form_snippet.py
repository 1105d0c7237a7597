"""The embeddable snippet, `GET /f/{form_id}.js`: `form_assets/embed.js` with the form's
active version, a fresh fill token and where to post filled in. The script renders the
form into the host page with DOM calls (no HTML is parsed from data) and posts JSON."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from api.form_page import UI, ZH_MESSAGES
from intake.form_document import Form, FormField

EMBED_JS = Path(__file__).parent / "form_assets" / "embed.js"
PLACEHOLDER = "__LEADFLOW_FORM_CONFIG__"

SNIPPET_UI = {
    "en": {
        "choose": UI["en"]["choose"],
        "fix": UI["en"]["fix"],
        "too_many": "Too many submissions from here; please try again in a minute.",
        "failed": "The form could not be sent; please try again.",
        "messages": {},
    },
    "zh-CN": {
        "choose": UI["zh-CN"]["choose"],
        "fix": UI["zh-CN"]["fix"],
        "too_many": "提交过于频繁。请稍后再试。",
        "failed": "提交失败。请重试。",
        "messages": ZH_MESSAGES,
    },
}


@cache
def _template() -> str:
    return EMBED_JS.read_text(encoding="utf-8")


def _field(field: FormField) -> dict[str, Any]:
    return {
        "name": field.name,
        "type": field.type,
        "label": field.label,
        "placeholder": field.placeholder,
        "required": field.required,
        "max_length": field.max_length,
        "options": [{"value": o.value, "label": o.label} for o in field.options],
        "value": field.value,
    }


def snippet(form: Form, *, action: str, token: str) -> str:
    """The script for `form`, posting to `action` with `token`."""
    config = {
        "action": action,
        "token": token,
        "ui": SNIPPET_UI,
        "form": {
            "id": form.id,
            "title": form.title,
            "description": form.description,
            "fields": [_field(f) for f in form.fields],
            "consent": None
            if form.consent is None
            else {"required": form.consent.required, "text": form.consent.text},
            "submit_label": form.submit_label,
        },
    }
    # JSON is a JavaScript expression; `<`, `>` and `&` escaped so that no value can close
    # a script element or open a comment if the script is ever inlined.
    encoded = (
        json.dumps(config, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return _template().replace(PLACEHOLDER, encoded)
