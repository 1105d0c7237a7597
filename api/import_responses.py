"""What the import routes answer (`/v1/imports`), as pydantic models for the OpenAPI
description, and the upload they take (multipart/form-data)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.responses import Answer, Timestamp

Status = Literal["queued", "running", "succeeded", "failed"]


class ImportQueued(Answer):
    import_id: str
    status: Literal["queued"]


class ImportProgress(Answer):
    done: int = Field(description="Rows read so far.")
    total: int | None = Field(description="Rows in the file, once it has been read.")


class RowFault(Answer):
    row: int = Field(description="The row's number in the file; the header is row 1.")
    column: str | None = Field(description="The CSV column; null for the row's shape.")
    message: str


class ImportReport(Answer):
    dry_run: bool
    rows: int
    imported: int = Field(description="Events appended (a dry run: rows that would be).")
    new_leads: int
    duplicates: int = Field(description="Rows imported before (or twice in the file).")
    bad_rows: int
    errors: list[RowFault]
    errors_listed_all: bool = Field(description="False when only the first 10,000 are listed.")


class ImportSummary(Answer):
    import_id: str
    status: Status
    dry_run: bool
    file_name: str | None
    file_bytes: int
    progress: ImportProgress
    created_at: Timestamp
    finished_at: Timestamp | None
    error: str | None


class Import(ImportSummary):
    mapping: dict[str, Any] = Field(description="The mapping, with its defaults filled in.")
    report: ImportReport | None = Field(description="Once succeeded: what happened to each row.")


class ImportList(Answer):
    items: list[ImportSummary]


IMPORT_MODELS: list[type[BaseModel]] = [ImportQueued, Import, ImportList]

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The CSV file (at most 50 MiB).",
                        },
                        "mapping": {
                            "type": "string",
                            "description": "The mapping document (JSON), as a field or a file "
                            "part (docs/imports.md).",
                        },
                        "dry_run": {"type": "boolean", "default": False},
                    },
                    "required": ["file", "mapping"],
                }
            }
        },
    }
}
