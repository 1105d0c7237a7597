"""`GET /v1/words/events` (read): the names of event types, follow-up kinds, stages and
pool reasons in one language, from the server's one vocabulary (`rules.vocabulary`), so
the console and any client show the same words as the server's own messages."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.deps import require
from api.locales import RequestLocale
from api.responses import KEYED, answer, refused
from api.word_responses import EventWords
from rules.vocabulary import event_words

router = APIRouter(prefix="/v1/words", tags=["words"])

# The words change only with a release: a client may keep them for an hour. They depend
# on the caller's key only for access, and on Accept-Language when `locale` is absent.
CACHE_HEADERS = {"Cache-Control": "private, max-age=3600", "Vary": "Accept-Language"}


@router.get(
    "/events",
    dependencies=[Depends(require("read"))],
    response_model=answer(EventWords),
    responses=refused(*KEYED),
)
async def get_event_words(locale: RequestLocale) -> JSONResponse:
    """`{"locale", "events": {type: word}, "kinds", "stages", "pool_reasons"}` in `locale`
    (else the `Accept-Language` header's, else en): every event type the log may hold,
    the follow-up kinds, the stages and the pool reasons."""
    return JSONResponse(event_words(locale), headers=CACHE_HEADERS)
