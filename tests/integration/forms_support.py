"""A valid form document for the form tests, and a client on a real app."""

from __future__ import annotations

import copy
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
