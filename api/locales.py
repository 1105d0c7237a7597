"""Which language an answer is worded in (docs/languages.md): the request's own `locale`
(a field of its JSON body, then the `locale` query parameter) wins, then the
`Accept-Language` header, then en, so a client that asks for nothing gets the English the
API has always answered."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from domain.locales import API_DEFAULT_LOCALE, Locale, negotiate

LOCALE_QUERY = Query(
    description="The language of the words (zh-CN or en); absent: the `Accept-Language` "
    "header's, else en (a JSON body's own `locale` wins over both)."
)


async def requested_locale(
    request: Request, locale: Annotated[Locale | None, LOCALE_QUERY] = None
) -> Locale | None:
    """`?locale=`, else the language `Accept-Language` prefers, else None; 422 for a
    `locale` leadflow does not speak."""
    return locale or negotiate(request.headers.get("accept-language"))


async def request_locale(
    requested: Annotated[Locale | None, Depends(requested_locale)],
) -> Locale:
    """`?locale=`, else `Accept-Language`'s, else en."""
    return requested or API_DEFAULT_LOCALE


RequestedLocale = Annotated[Locale | None, Depends(requested_locale)]
RequestLocale = Annotated[Locale, Depends(request_locale)]
