"""A valid form document for the form tests, and a client on a real app."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

ADMIN = {"Authorization": "Bearer lf_test_admin"}

CONTACT_FORM: dict[str, Any] = {
    "id": "contact-us",
    "name": "Contact us",
    "title": {"en": "Contact us", "zh-CN": "联系我们"},
    "source": "website",
    "channel": "form",
    "campaign_id": "spring",
    "fields": [
        {
            "name": "full_name",
            "type": "text",
            "maps_to": "name",
            "required": True,
            "label": {"en": "Name", "zh-CN": "姓名"},
        },
        {
            "name": "email",
            "type": "email",
            "maps_to": "email",
            "required": True,
            "label": {"en": "Email", "zh-CN": "邮箱"},
        },
        {
            "name": "mobile",
            "type": "phone",
            "maps_to": "phone",
            "label": {"en": "Mobile", "zh-CN": "手机"},
        },
        {
            "name": "size",
            "type": "select",
            "maps_to": "company_size",
            "label": {"en": "Company size", "zh-CN": "公司规模"},
            "options": [{"value": "1-10", "label": "1-10"}, {"value": "11-100", "label": "11-100"}],
        },
        {
            "name": "order_ref",
            "type": "text",
            "maps_to": "attributes.order_ref",
            "pattern": "[A-Z]{2}[0-9]{4}",
            "max_length": 6,
            "label": {"en": "Order reference", "zh-CN": "订单号"},
        },
        {
            "name": "newsletter",
            "type": "checkbox",
            "maps_to": "attributes.newsletter",
            "label": {"en": "Send me news", "zh-CN": "订阅新闻"},
        },
        {
            "name": "landing",
            "type": "hidden",
            "maps_to": "attributes.landing",
            "value": "home",
            "label": "landing",
        },
    ],
    "consent": {
        "required": True,
        "version": "2026-01",
        "text": {"en": "I agree to be contacted.", "zh-CN": "我同意被联系。"},
    },
    "thank_you": {
        "message": {"en": "Thanks, we will call you.", "zh-CN": "感谢您。我们会联系您。"}
    },
    "allowed_origins": ["http://127.0.0.1:9"],
    "min_fill_seconds": 2,
}


def contact_form(**changes: Any) -> dict[str, Any]:
    form = copy.deepcopy(CONTACT_FORM)
    form.update(changes)
    return form


def aged_token(app: Any, form_id: str, age: float = 30) -> str:
    """A fill token as the page would have carried it `age` seconds ago."""
    from intake.abuse import issue_token

    return issue_token(app.state.form_guard.secret, form_id, time.time() - age)


def captures(store: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Every lead.captured on the log: (lead id, data), in log order."""
    from domain.lead import LeadEvent

    found = []
    for notification in store.event_log.recorder.select_notifications(None, 10_000):
        event = store.event_log.mapper.to_domain_event(notification)
        if isinstance(event, LeadEvent) and event.TYPE == "lead.captured":
            found.append((event.originator_id, event.data))
    return found


def page_token(page: str) -> str:
    found = re.search(r'name="_lf_token" value="([^"]+)"', page)
    assert found is not None, "the page carries no fill token"
    return found.group(1)
