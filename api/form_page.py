"""The hosted form's HTML (`GET /f/{form_id}`): one self-contained, mobile-first page in
zh-CN or English, with the visitor's values and the errors on their fields when a
submission is sent back, and the thank-you page. No script and no external asset (a
captcha widget's script only when one is configured); every value is escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from domain.errors import FieldError
from intake.abuse import HONEYPOT, TOKEN_FIELD, Captcha
from intake.form_document import Form, FormField, in_language
from intake.submission import UTM_PARAMETERS, PageContext

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei",sans-serif;color:#1f2933;background:#f5f7fa}
main{max-width:34rem;margin:0 auto;padding:1.25rem 1rem 2rem;background:#fff;min-height:100vh}
h1{font-size:1.5rem;margin:.25rem 0 .75rem}
nav{font-size:.875rem;margin-bottom:1rem}nav a{color:#2563eb}
.field{margin:0 0 1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
.check label{display:flex;gap:.5rem;font-weight:400;align-items:flex-start}
input[type=text],input[type=email],input[type=tel],select{width:100%;padding:.65rem .75rem;
font:inherit;border:1px solid #cbd2d9;border-radius:.375rem;background:#fff}
input:focus,select:focus{outline:2px solid #2563eb;outline-offset:1px}
.check input{width:1.25rem;height:1.25rem;margin-top:.15rem}
.invalid input,.invalid select{border-color:#c81e1e}
.error{color:#c81e1e;font-size:.875rem;margin:.25rem 0 0}
.alert{border:1px solid #c81e1e;background:#fdf2f2;padding:.75rem;border-radius:.375rem}
button{width:100%;padding:.8rem;font:inherit;font-weight:600;color:#fff;background:#2563eb;
border:0;border-radius:.375rem;cursor:pointer}
.hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
@media(min-width:40rem){main{margin-top:2rem;min-height:0;border-radius:.5rem;
box-shadow:0 1px 3px rgba(0,0,0,.1);padding:2rem}}
"""

UI: dict[str, dict[str, str]] = {
    "en": {
        "required": "Required",
        "choose": "Choose…",
        "fix": "Please correct the fields marked below.",
        "expired": "This page was open too long; please submit it again.",
        "other": "English",
        "consent": "Consent",
        "thanks_title": "Thank you",
        "homepage": "Leave this empty",
    },
    "zh-CN": {
        "required": "必填",
        "choose": "请选择…",
        "fix": "请修改下面标出的内容。",
        "expired": "页面打开时间过长。请重新提交。",
        "other": "中文",
        "consent": "同意",
        "thanks_title": "提交成功",
        "homepage": "请留空",
    },
}
# Field messages shown in Chinese; others are shown as the validation wrote them.
ZH_MESSAGES = {
    "required": "此项为必填项",
    "required: the form asks for consent": "请勾选同意后再提交",
    "is not in the expected format": "格式不正确",
    "not one of the options": "请从选项中选择",
}


def language_of(query: str | None, accept_language: str | None) -> str:
    """`?lang=` when it names a language, else the first of Accept-Language leadflow has."""
    if query in UI:
        return query
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _message(error: FieldError, language: str) -> str:
    if language == "zh-CN":
        return ZH_MESSAGES.get(error.message, error.message)
    return error.message


def _control(field: FormField, value: object, language: str, described: str) -> str:
    name = _e(field.name)
    common = f'id="f-{name}" name="{name}"{described}'
    if field.required:
        common += " required"
    if field.type == "select":
        options = [f'<option value="">{_e(UI[language]["choose"])}</option>']
        for option in field.options:
            selected = " selected" if value == option.value else ""
            options.append(
                f'<option value="{_e(option.value)}"{selected}>'
                f"{_e(in_language(option.label, language))}</option>"
            )
        return f"<select {common}>{''.join(options)}</select>"
    kind, extra = {
        "email": ("email", ' autocomplete="email" inputmode="email"'),
        "phone": ("tel", ' autocomplete="tel" inputmode="tel"'),
    }.get(field.type, ("text", ""))
    if field.maps_to == "name":
        extra = ' autocomplete="name"'
    if field.placeholder:
        extra += f' placeholder="{_e(in_language(field.placeholder, language))}"'
    shown = "" if value is None or isinstance(value, bool) else _e(value)
    return f'<input type="{kind}" {common} value="{shown}" maxlength="{field.max_length}"{extra}>'


def _field(field: FormField, value: object, error: str | None, language: str) -> str:
    if field.type == "hidden":
        shown = field.value if value is None else value
        return f'<input type="hidden" name="{_e(field.name)}" value="{_e(shown or "")}">'
    label = _e(in_language(field.label, language))
    marker = (
        f' <span aria-label="{_e(UI[language]["required"])}">*</span>' if field.required else ""
    )
    described = f' aria-invalid="true" aria-describedby="e-{_e(field.name)}"' if error else ""
    message = f'<p class="error" id="e-{_e(field.name)}">{_e(error)}</p>' if error else ""
    classes = (
        "field" + (" check" if field.type == "checkbox" else "") + (" invalid" if error else "")
    )
    if field.type == "checkbox":
        checked = " checked" if value is True else ""
        required = " required" if field.required else ""
        control = (
            f'<input type="checkbox" id="f-{_e(field.name)}" name="{_e(field.name)}" '
            f'value="on"{checked}{required}{described}>'
        )
        return f'<div class="{classes}"><label>{control} {label}{marker}</label>{message}</div>'
    control = _control(field, value, language, described)
    return (
        f'<div class="{classes}"><label for="f-{_e(field.name)}">{label}{marker}</label>'
        f"{control}{message}</div>"
    )


def _hidden(name: str, value: str | None) -> str:
    return f'<input type="hidden" name="{_e(name)}" value="{_e(value or "")}">' if value else ""


def _document(title: str, language: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="{_e(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def form_page(
    form: Form,
    *,
    action: str,
    token: str,
    context: PageContext,
    values: Mapping[str, object] | None = None,
    errors: Sequence[FieldError] = (),
    expired: bool = False,
    captcha: Captcha | None = None,
) -> str:
    """The page of `form` in `context.language`: its fields (with `values` and each of
    `errors` on its field, when a submission is sent back), the consent, the hidden
    context (token, page URL, referrer, UTM tags, campaign, channel) and the honeypot."""
    language = context.language
    values = values or {}
    by_field = {e.path.lstrip("/"): _message(e, language) for e in errors}
    title = in_language(form.title, language)
    other = "en" if language == "zh-CN" else "zh-CN"
    # The other language keeps what the visitor came with: campaign, channel, UTM tags.
    kept = {"campaign": context.campaign, "channel": context.channel, **(context.utm or {})}
    query = {"lang": other, **{name: value for name, value in kept.items() if value}}
    parts = [
        f"<h1>{_e(title)}</h1>",
        f'<nav><a href="?{_e(urlencode(query))}" hreflang="{other}">'
        f"{_e(UI[other]['other'])}</a></nav>",
    ]
    if form.description:
        parts.append(f"<p>{_e(in_language(form.description, language))}</p>")
    if expired:
        parts.append(f'<p class="alert" role="alert">{_e(UI[language]["expired"])}</p>')
    elif errors:
        parts.append(f'<p class="alert" role="alert">{_e(UI[language]["fix"])}</p>')
        general = [e for e in errors if e.path.lstrip("/") not in {f.name for f in form.fields}]
        general = [e for e in general if e.path != "/consent"]
        parts.extend(f'<p class="error">{_e(_message(e, language))}</p>' for e in general)
    parts.append(f'<form method="post" action="{_e(action)}" accept-charset="utf-8">')
    parts.extend(
        _field(field, values.get(field.name), by_field.get(field.name), language)
        for field in form.fields
    )
    if form.consent is not None:
        consent = FormField(
            name="consent",
            type="checkbox",
            maps_to="attributes.consent",
            label=form.consent.text,
            required=form.consent.required,
        )
        given = values.get("consent") in (True, "on", "true", "1", "yes")
        parts.append(_field(consent, given, by_field.get("consent"), language))
    parts.append(
        f'<div class="hp" aria-hidden="true"><label>{_e(UI[language]["homepage"])}'
        f'<input type="text" name="{HONEYPOT}" tabindex="-1" autocomplete="off" value="">'
        "</label></div>"
    )
    if captcha is not None and captcha.site_key:
        parts.append(f'<div class="cf-turnstile h-captcha" data-sitekey="{_e(captcha.site_key)}">')
        parts.append("</div>")
    parts.append(_hidden(TOKEN_FIELD, token))
    parts.append(_hidden("lang", language))
    for name, value in (
        ("page_url", context.page_url),
        ("referrer", context.referrer),
        ("campaign", context.campaign),
        ("channel", context.channel),
        *((utm, (context.utm or {}).get(utm)) for utm in UTM_PARAMETERS),
    ):
        parts.append(_hidden(name, value))
    parts.append(f'<button type="submit">{_e(in_language(form.submit_label, language))}</button>')
    parts.append("</form>")
    if captcha is not None and captcha.script_url:
        parts.append(f'<script src="{_e(captcha.script_url)}" async defer></script>')
    return _document(title, language, "".join(parts))


def thank_you_page(form: Form, language: str) -> str:
    message = in_language(form.thank_you.message or {}, language)
    title = UI[language]["thanks_title"]
    return _document(title, language, f"<h1>{_e(title)}</h1><p>{_e(message)}</p>")


def plain_page(title: str, message: str, language: str = "en") -> str:
    """A page saying one thing (an unknown form, too many submissions)."""
    return _document(title, language, f"<h1>{_e(title)}</h1><p>{_e(message)}</p>")


def content_security_policy(form: Form, captcha: Captcha | None) -> str:
    """Styles inline, no script but a configured captcha's, posts to this API (and the
    browser follows a redirect to the thank-you URL), framed by the allowed origins."""
    form_action = ["'self'"]
    if form.thank_you.redirect_url:
        parts = urlsplit(form.thank_you.redirect_url)
        form_action.append(f"{parts.scheme}://{parts.netloc}")
    script = frame = "'none'"
    if captcha is not None and captcha.script_url:
        parts = urlsplit(captcha.script_url)
        script = frame = f"{parts.scheme}://{parts.netloc}"
    ancestors = " ".join(["'self'", *form.allowed_origins])
    actions = " ".join(form_action)
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        f"script-src {script}; frame-src {frame}; connect-src {script}; "
        f"form-action {actions}; base-uri 'none'; frame-ancestors {ancestors}"
    )
