"""The request bodies in the OpenAPI description (`/openapi.json`); `describe_api`, which
adds their schemas and the answers' (`api.responses`) to the document; `openapi_json`, the
document as `docs/openapi.json` holds it.

Routes read their JSON bodies through `api.deps.body_for`, after authentication, so
FastAPI cannot see them: each route that takes a body describes it with
`openapi_extra=<a body below>`, and `describe_api` adds the schemas those refer to. The
schemas say what the parsers (`parse_event`, `parse_ruleset`, `parse_directory`,
`parse_what_if`, the key routes) accept; they enforce nothing, the parsers do.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.deps import SCOPE_OF
from api.erasure_responses import ERASURE_MODELS
from api.form_responses import FORM_MODELS
from api.import_responses import IMPORT_MODELS
from api.lead_query import MAX_TEXT, MAX_VALUES, MULTI_VALUED, VIEW_PARAMETERS
from api.report_responses import REPORT_MODELS
from api.responses import MODELS as ANSWER_MODELS
from api.rule_word_responses import RULE_WORD_MODELS
from api.template_preview_responses import TEMPLATE_PREVIEW_MODELS
from api.trial_responses import TRIAL_MODELS
from api.user_responses import USER_MODELS
from api.view_responses import VIEW_MODELS
from api.word_responses import WORD_MODELS
from api.work_responses import WORK_MODELS
from domain.directory import Directory
from domain.events import EXTERNAL_DATA, LEADLESS_TYPES
from domain.identity import DECIDED_ID_PREFIX
from domain.limits import MAX_EVENT_DATA_BYTES
from domain.locales import LOCALES
from rules.builtin_templates import BUILTIN_TEMPLATES
from rules.model import Ruleset
from store.keys import MAX_ROTATION_GRACE, SCOPES


def _component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_MODELS: list[type[BaseModel]] = [Ruleset, Directory, *dict.fromkeys(EXTERNAL_DATA.values())]
# What the routes answer (`api.responses`): serialisation schemas.
_, _ANSWER_DEFS = models_json_schema(
    [
        (model, "serialization")
        for model in [
            *ANSWER_MODELS,
            *REPORT_MODELS,
            *FORM_MODELS,
            *IMPORT_MODELS,
            *ERASURE_MODELS,
            *RULE_WORD_MODELS,
            *TRIAL_MODELS,
            *TEMPLATE_PREVIEW_MODELS,
            *WORK_MODELS,
            *VIEW_MODELS,
            *WORD_MODELS,
            *USER_MODELS,
        ]
    ],
    ref_template="#/components/schemas/{model}",
)
ANSWER_SCHEMAS: dict[str, Any] = _ANSWER_DEFS["$defs"]
_REFS, _DEFS = models_json_schema(
    [(model, "validation") for model in _MODELS], ref_template="#/components/schemas/{model}"
)


def _model(model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = _REFS[(model, "validation")]
    return schema


def _event_variant(event_type: str) -> dict[str, Any]:
    """One postable type's envelope: `lead_id` is required unless the lead is found by
    identity (a capture) or the event belongs to no lead."""
    owns_lead = event_type != "lead.captured" and event_type not in LEADLESS_TYPES
    model = EXTERNAL_DATA[event_type]
    properties: dict[str, Any] = {
        "type": {"const": event_type},
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "not": {"pattern": "^" + re.escape(DECIDED_ID_PREFIX)},
            "description": "Makes the post idempotent, per API key (like Idempotency-Key).",
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset, from 1970 to a day past the server's "
            "clock; the time of the post when left out.",
        },
        "data": _model(model),
    }
    required = ["type"]
    if owns_lead:
        properties["lead_id"] = {"type": "string", "format": "uuid"}
        required.append("lead_id")
    # Left out, `data` is `{}`: required only where `{}` is not valid.
    if any(field.is_required() for field in model.model_fields.values()):
        required.append("data")
    return {
        "type": "object",
        "title": event_type,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    **_DEFS["$defs"],
    "Event": {
        "description": "A posted event (SPEC §4). A capture needs `data.email` or "
        f"`data.phone`; `data` takes at most {MAX_EVENT_DATA_BYTES} bytes once encoded.",
        "oneOf": [_event_variant(event_type) for event_type in EXTERNAL_DATA],
    },
}


def _json_body(
    schema: dict[str, Any],
    *,
    required: bool = True,
    examples: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = examples
    return {"requestBody": {"required": required, "content": {"application/json": media}}}


# The first is what Swagger UI's "Try it out" starts from: a capture it can post as it is
# (named to come first in docs/openapi.json too, whose keys are sorted).
CAPTURE_EXAMPLE = {
    "type": "lead.captured",
    "data": {
        "email": "ann@example.com",
        "phone": "138 0013 8000",
        "name": "Ann",
        "source": "website",
        "region": "east",
        "intent": "high",
    },
}
EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "capture": {
        "summary": "A lead from a web form (its lead is found by email or phone)",
        "value": CAPTURE_EXAMPLE,
    },
    "follow-up": {
        "summary": "A rep called the lead",
        "value": {
            "type": "lead.followed_up",
            "event_id": "crm-call-9001",
            "lead_id": "0b7e4a52-2c4e-5d8a-9f3e-6a1d2c3b4e5f",
            "data": {"rep_id": "rep-east-1", "kind": "call", "note": "asked for a demo"},
        },
    },
    "spend": {
        "summary": "A campaign's spend (no lead)",
        "value": {
            "type": "campaign.spend_recorded",
            "data": {"campaign_id": "spring", "amount": 1200, "currency": "CNY"},
        },
    },
}
EVENT_BODY = _json_body(_component("Event"), examples=EVENT_EXAMPLES)


def batch_body(max_events: int) -> dict[str, Any]:
    """`{"events": [...]}` of at most `max_events` events."""
    events = {"type": "array", "items": _component("Event"), "maxItems": max_events}
    return _json_body(
        {
            "type": "object",
            "properties": {"events": events},
            "required": ["events"],
            "additionalProperties": False,
        },
        examples={
            "two events": {
                "value": {
                    "events": [
                        CAPTURE_EXAMPLE,
                        EVENT_EXAMPLES["spend"]["value"],
                    ]
                }
            }
        },
    )


RULESET_BODY = _json_body(_model(Ruleset))
DIRECTORY_BODY = _json_body(_model(Directory))
DESCRIBE_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "candidate": _model(Ruleset),
            "base_version": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "The version to compare with; null or absent: the active one.",
            },
            "locale": {
                "enum": [*LOCALES, None],
                "description": "The language of the sentences; null or absent: `?locale=`, "
                "then the `Accept-Language` header's, else en.",
            },
        },
        "required": ["candidate"],
        "additionalProperties": False,
    }
)
PREVIEW_TEMPLATE_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "template": _component("Template"),
            "template_id": {
                "enum": sorted(BUILTIN_TEMPLATES),
                "description": "Instead of `template`: a built-in template, in `locale`.",
            },
            "locale": {
                "enum": list(LOCALES),
                "description": "The language: a built-in template's and how times read "
                "(absent: `?locale=`, then `Accept-Language`'s, then LEADFLOW_LOCALE).",
            },
            "lead": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
                "description": "Fields to use instead of the sample lead's, e.g. name.",
            },
            "variant": {"type": "string", "description": "Show this variant's subject."},
        },
        "oneOf": [{"required": ["template"]}, {"required": ["template_id"]}],
        "additionalProperties": False,
    },
    examples={
        "welcome": {
            "value": {"template": {"subject": "Welcome, {name}", "body": "Hi {name} of {company}"}}
        },
        "built-in in Chinese": {"value": {"template_id": "follow-up-overdue", "locale": "zh-CN"}},
    },
)
REPLAY_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "ruleset": _model(Ruleset),
            "baseline": {"type": "integer", "minimum": 1},
            "from": {"type": "string", "description": "An ISO 8601 date or date-time."},
            "to": {"type": "string", "description": "An ISO 8601 date or date-time."},
            "lead_id": {"type": "string", "format": "uuid"},
            "locale": {
                "enum": list(LOCALES),
                "description": "The language of the summary; absent: `?locale=`, then the "
                "`Accept-Language` header's, else en.",
            },
        },
        "required": ["ruleset"],
        "additionalProperties": False,
    }
)


def reassign_body(max_leads: int) -> dict[str, Any]:
    """`{"lead_ids": [...], "rep_id", "reason"?}` of at most `max_leads` leads."""
    return _json_body(
        {
            "type": "object",
            "properties": {
                "lead_ids": {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid"},
                    "minItems": 1,
                    "maxItems": max_leads,
                },
                "rep_id": {"type": "string", "minLength": 1, "maxLength": 100},
                "reason": {"type": "string", "minLength": 1, "maxLength": 500},
            },
            "required": ["lead_ids", "rep_id"],
            "additionalProperties": False,
        },
        examples={
            "to-a-rep": {
                "summary": "Two leads to rep-east-2",
                "value": {
                    "lead_ids": [
                        "0b7e4a52-2c4e-5d8a-9f3e-6a1d2c3b4e5f",
                        "1c8f5b63-3d5f-4e9b-8a4f-7b2e3d4c5f60",
                    ],
                    "rep_id": "rep-east-2",
                    "reason": "holiday cover",
                },
            }
        },
    )


def new_key_body(max_name_length: int) -> dict[str, Any]:
    """`{"scopes": [...], "name"?: ...}`, the name at most `max_name_length` characters."""
    return _json_body(
        {
            "type": "object",
            "properties": {
                "scopes": {"type": "array", "items": {"enum": list(SCOPES)}, "minItems": 1},
                "name": {"type": "string", "minLength": 1, "maxLength": max_name_length},
            },
            "required": ["scopes"],
            "additionalProperties": False,
        }
    )


ROTATION_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "grace_seconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": int(MAX_ROTATION_GRACE.total_seconds()),
                "description": "How long the old secret keeps working (default 86400).",
            }
        },
        "additionalProperties": False,
    },
    required=False,
)


# Console sign-in and user administration (api.routes.session, api.routes.users).
_PREFERENCES = {
    "locale": {"enum": ["zh-CN", "en", None], "description": "null: the browser's language"},
    "time_zone": {"type": ["string", "null"], "description": "IANA, e.g. Asia/Shanghai"},
}
_PASSWORD = {"type": "string", "minLength": 8, "maxLength": 256}
_USER_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "role": {"enum": ["rep", "manager", "director", "admin"]},
    "person_id": {"type": ["string", "null"], "description": "A rep's or person's directory id"},
    "password": _PASSWORD,
    **_PREFERENCES,
}
SIGN_IN_BODY = _json_body(
    {
        "type": "object",
        "properties": {"login": {"type": "string", "maxLength": 256}, "password": _PASSWORD},
        "required": ["login", "password"],
        "additionalProperties": False,
    },
    examples={"sign_in": {"value": {"login": "wang@example.com", "password": "correct horse"}}},
)
PREFERENCES_BODY = _json_body(
    {"type": "object", "properties": _PREFERENCES, "additionalProperties": False},
    examples={"chinese": {"value": {"locale": "zh-CN", "time_zone": "Asia/Shanghai"}}},
)
NEW_USER_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "login": {"type": "string", "minLength": 1, "maxLength": 200},
            **_USER_FIELDS,
        },
        "required": ["login", "role"],
        "additionalProperties": False,
    },
    examples={"rep": {"value": {"login": "wang@example.com", "role": "rep", "person_id": "rep-a"}}},
)
USER_CHANGES_BODY = _json_body(
    {
        "type": "object",
        "properties": {**_USER_FIELDS, "disabled": {"type": "boolean"}},
        "additionalProperties": False,
    },
    examples={"disable": {"value": {"disabled": True}}},
)


def _view_parameter(name: str) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
    if name == "in_pool":
        return {"type": "boolean"}
    if name in MULTI_VALUED:
        return {"anyOf": [text, {"type": "array", "items": text, "maxItems": MAX_VALUES}]}
    return text


VIEW_BODY = _json_body(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "query": {
                "type": "object",
                "description": "The `GET /v1/leads` parameters the view applies.",
                "properties": {name: _view_parameter(name) for name in VIEW_PARAMETERS},
                "additionalProperties": False,
            },
        },
        "required": ["name", "query"],
        "additionalProperties": False,
    },
    examples={
        "a view": {
            "summary": "New and MQL leads of a company search, newest first",
            "value": {
                "name": "科技, new",
                "query": {"q": "科技", "stage": ["new", "MQL"], "sort": "-created_at"},
            },
        }
    },
)


def openapi_json(document: dict[str, Any]) -> str:
    """The OpenAPI document as `docs/openapi.json` holds it: keys sorted, two-space indent,
    a final newline, so a change to the API is a readable diff."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# The key every operation behind `api.deps.require` asks for: an HTTP bearer scheme (named
# `apiKey` since the first description; clients may have been generated from it).
SECURITY_SCHEME = "apiKey"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key, `Authorization: Bearer <key>`, holding the scope the operation "
    "lists (an admin key holds every scope). A person signed in to the console sends the "
    "`leadflow_session` cookie instead, and may do what their role allows (docs/access.md).",
}
# The console's own session routes (`GET`/`PATCH`/`DELETE /v1/session`) take the cookie alone.
SESSION_SCHEME = "session"
SESSION_COOKIE = {
    "type": "apiKey",
    "in": "cookie",
    "name": "leadflow_session",
    "description": "The session `POST /v1/session` opened; unsafe methods also send its "
    "`X-CSRF-Token`.",
}
SESSION_ONLY: dict[str, Any] = {"security": [{SESSION_SCHEME: []}]}
# The scopes only people's roles name, by the key scope that grants them (domain.permissions).
_KEY_SCOPE = {"reports": "read", "rules": "admin"}


def _scopes(dependant: Dependant) -> list[str]:
    """The scopes `api.deps.require` checks anywhere in a route's dependencies."""
    found = [SCOPE_OF[dependant.call]] if dependant.call in SCOPE_OF else []
    for sub in dependant.dependencies:
        found += [scope for scope in _scopes(sub) if scope not in found]
    return found


def _document_keys(app: FastAPI, document: dict[str, Any]) -> None:
    """Each operation behind a key says which scope (`security`): what Swagger's Authorize
    sends, read from the routes' dependencies rather than declared by a dependency that
    would run on every request."""
    for context in iter_route_contexts(app.routes):  # through the included routers
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        scopes = _scopes(route.dependant)
        path = context.path_format
        if not scopes or path is None:
            continue
        for method in route.methods or ():
            operation = document["paths"][path][method.lower()]
            key_scopes = list(dict.fromkeys(_KEY_SCOPE.get(scope, scope) for scope in scopes))
            operation["security"] = [{SECURITY_SCHEME: key_scopes}]
    schemes = document["components"].setdefault("securitySchemes", {})
    schemes[SECURITY_SCHEME] = BEARER
    schemes[SESSION_SCHEME] = SESSION_COOKIE


def describe_api(app: FastAPI) -> None:
    """Make `app.openapi()` include the schemas the bodies above and the routes' answers
    (`api.responses`) refer to, and the key each operation needs."""
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        document = describe()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(SCHEMAS)
        schemas.update(ANSWER_SCHEMAS)
        _document_keys(app, document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
