"""CSV imports over HTTP (docs/imports.md): `POST /v1/imports` uploads a file with its
mapping (multipart/form-data; admin) and queues the import, `GET /v1/imports/{id}`
follows it to its report, `GET /v1/imports` lists the latest.

The upload is checked before anything is recorded: a bad mapping, a file that is not
text in the mapping's encoding or lacks a mapped column is a 422 naming the field
(`/mapping/...`, `/file`); over 50 MiB is a 413. Rows are then imported by a worker thread
of this API process (`intake.jobs`); a bad row is reported, not refused.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.types import Message

from api.deps import AdminCaller, require
from api.errors import ApiError, error_body
from api.import_responses import UPLOAD_BODY, Import, ImportList, ImportQueued
from api.responses import KEYED, answer, refused
from domain.errors import FieldError, InvalidDocument
from domain.limits import MAX_JSON_DEPTH, nests_deeper_than
from intake.jobs import MAX_UPLOAD_BYTES, ImportRunner, TooManyImports, Upload
from intake.mapping import InvalidMapping, parse_mapping
from intake.rows import read_table

router = APIRouter(prefix="/v1/imports", tags=["imports"])

# The mapping, the dry-run flag and multipart's framing, on top of the file.
_MAX_BODY = MAX_UPLOAD_BYTES + 1024 * 1024
_FIELDS = ("file", "mapping", "dry_run")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")


async def get_imports(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.imports
    return runner


ImportsDep = Annotated[ImportRunner, Depends(get_imports)]
NO_IMPORT = {404: "No such import (`import_not_found`)."}


def _invalid(path: str, message: str) -> InvalidDocument:
    return InvalidMapping([FieldError(path, message)])


async def _body(request: Request) -> bytes:
    """The request's body, refused with 413 as soon as it is over the upload limit."""
    too_large = ApiError(413, "body_too_large", "an import file is at most 50 MiB")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _upload(request: Request) -> tuple[bytes, str | None, Any, bool]:
    """The file, its name, the mapping document (parsed JSON) and the dry-run flag."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise _invalid("/file", "send multipart/form-data with the parts file and mapping")
    body = await _body(request)

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive).form(
            max_files=2, max_fields=3, max_part_size=1024 * 1024
        )
    except Exception as bad:  # starlette's MultiPartException, or a malformed part
        raise _invalid("/file", f"not a readable multipart body: {bad}") from None
    try:
        errors = [FieldError(f"/{name}", "unknown part") for name in form if name not in _FIELDS]
        file, mapping, flag = form.get("file"), form.get("mapping"), form.get("dry_run", "")
        if not isinstance(file, UploadFile):
            errors.append(FieldError("/file", "required: the CSV file, a file part"))
        mapping_text = await mapping.read() if isinstance(mapping, UploadFile) else mapping
        if isinstance(mapping_text, bytes):
            mapping_text = mapping_text.decode("utf-8", "replace")
        document: Any = None
        if not mapping_text:
            errors.append(FieldError("/mapping", "required: the mapping document (JSON)"))
        else:
            try:
                document = json.loads(mapping_text)
            except ValueError as bad:
                errors.append(FieldError("/mapping", f"not JSON: {bad}"))
            except RecursionError:
                errors.append(FieldError("/mapping", "nests too deep"))
            else:
                if nests_deeper_than(document, MAX_JSON_DEPTH):
                    errors.append(FieldError("/mapping", f"nests deeper than {MAX_JSON_DEPTH}"))
        if not isinstance(flag, str) or flag.strip().lower() not in (*_TRUE, *_FALSE):
            errors.append(FieldError("/dry_run", "true or false"))
        if errors:
            raise InvalidMapping(errors)
        assert isinstance(file, UploadFile) and isinstance(flag, str)
        content = await file.read()
        if len(content) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "body_too_large", "an import file is at most 50 MiB")
        return content, file.filename, document, flag.strip().lower() in _TRUE
    finally:
        await form.close()


def _checked(content: bytes, file_name: str | None, document: Any, dry_run: bool) -> Upload:
    """The upload, once its mapping is valid and the file can be read as it says; raises
    InvalidMapping (paths under /mapping) or InvalidImportFile (/file)."""
    try:
        mapping = parse_mapping(document)
        read_table(content, mapping)
    except InvalidMapping as bad:
        raise InvalidMapping(
            [FieldError("/mapping" + e.path, e.message) for e in bad.errors]
        ) from None
    # The name is only shown back: text no store can keep is replaced, not refused.
    name = None if file_name is None else _UNSAFE_TEXT.sub("\ufffd", file_name[:200])
    return Upload(content, name, mapping, dry_run)


@router.post(
    "",
    status_code=202,
    openapi_extra=UPLOAD_BODY,
    response_model=answer(ImportQueued),
    responses=refused(
        *KEYED,
        400,
        413,
        meanings={
            413: "The file is over 50 MiB (`body_too_large`).",
            422: "The upload is not valid: the mapping (`/mapping/...`), the file (`/file`: "
            "not text in the mapping's encoding, no header) or `/dry_run`. Nothing recorded.",
            429: "Too many failed authentications from this address, or this API process "
            "already runs its most imports (`too_many_imports`): wait `Retry-After` seconds.",
        },
    ),
)
async def start_import(request: Request, _: AdminCaller, imports: ImportsDep) -> JSONResponse:
    """Queue an import of the uploaded CSV file as its mapping says (`dry_run`: validate
    every row, write nothing). Answers 202 with the import's id; follow it with
    `GET /v1/imports/{id}`."""
    content, file_name, document, dry_run = await _upload(request)
    upload = await run_in_threadpool(_checked, content, file_name, document, dry_run)
    try:
        import_id = await run_in_threadpool(imports.submit, upload)
    except TooManyImports as full:
        return JSONResponse(
            error_body(full.code, full.message),
            status_code=429,
            headers={"Retry-After": str(full.retry_after_seconds)},
        )
    return JSONResponse(
        {"import_id": import_id, "status": "queued"},
        status_code=202,
        headers={"Location": f"/v1/imports/{import_id}"},
    )


@router.get(
    "",
    dependencies=[Depends(require("admin"))],
    response_model=answer(ImportList),
    responses=refused(*KEYED),
)
async def list_imports(imports: ImportsDep) -> dict[str, Any]:
    """The latest 100 imports, newest first, without their reports."""
    items = await run_in_threadpool(imports.jobs.list, datetime.now(UTC))
    return {"items": items}


@router.get(
    "/{import_id}",
    dependencies=[Depends(require("admin"))],
    response_model=answer(Import),
    responses=refused(*KEYED, 404, meanings=NO_IMPORT),
)
async def get_import(import_id: str, imports: ImportsDep) -> dict[str, Any]:
    """The import's status and progress (rows read of the file's rows); once it succeeded,
    its `report`: rows read, imported, duplicates, and each bad row's faults."""
    return await run_in_threadpool(imports.jobs.get, import_id, datetime.now(UTC))
