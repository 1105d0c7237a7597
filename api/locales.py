"""Which language an answer is worded in (docs/languages.md): the request's own `locale`
(a query parameter, or a field of its JSON body) wins, then the `Accept-Language` header,
then en, so a client that asks for nothing gets the English the API has always answered."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from domain.locales import API_DEFAULT_LOCALE, Locale, negotiate

LOCALE_QUERY = Query(
    description="The language of the words (zh-CN or en); absent: the `Accept-Language` "
    "header's, else en."
)


def header_locale(request: Request) -> Locale:
    """The language the `Accept-Language` header prefers, else en (for a route whose body
    may name one, which then wins)."""
    return negotiate(request.headers.get("accept-language")) or API_DEFAULT_LOCALE


async def request_locale(
    request: Request, locale: Annotated[Locale | None, LOCALE_QUERY] = None
) -> Locale:
    """`?locale=`, else the `Accept-Language` header's, else en; 422 for a language
    leadflow does not speak."""
    return locale or header_locale(request)


RequestLocale = Annotated[Locale, Depends(request_locale)]
