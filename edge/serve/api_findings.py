"""The findings API: record what a clinician found against a result, the worklist, CSV import.

    PUT|DELETE /api/history/{id}/finding   {"label", "source", "note"} -> the updated record
    GET  /api/worklist?limit=N             results without a finding, referred first
    POST /api/findings/import              a findings CSV (text/csv body or one file part)
    GET  /api/findings/pending             imported rows still waiting for their image
    DELETE /api/findings/pending/{id}      drops one of them

All of them need a reviewer (edge/serve/roles.py); edge/serve/findings.py does the work.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.serve.findings import MAX_WORKLIST, SOURCES, FindingError, NoSuchResult
from edge.serve.params import json_object
from edge.serve.roles import REVIEWER, require
from edge.serve.station import Station

MAX_BODY_FIELDS = 8
FINDING_EXAMPLE = '{"label": "Normal", "source": "radiologist"}'


def routes(station: Station) -> list[Route]:
    findings = station.findings

    def reviewer(request: Request) -> str:
        """The name the audit records; 401 or 403 below a reviewer."""
        return require(request, REVIEWER).name

    def record(result_id: int) -> dict:
        found = station.history.get(result_id)
        if found is None:
            raise HTTPException(404, f"no result {result_id}")
        return findings.attach([found])[0]

    async def put_finding(request: Request) -> Response:
        who = reviewer(request)
        result_id = request.path_params["record_id"]
        body = await json_object(request, FINDING_EXAMPLE)
        try:
            findings.set(result_id, body.get("label"), body.get("source"), body.get("note"),
                         who)
        except NoSuchResult as err:
            raise HTTPException(404, str(err)) from None
        except FindingError as err:
            raise HTTPException(400, str(err)) from None
        return JSONResponse(record(result_id))

    def delete_finding(request: Request) -> Response:
        who = reviewer(request)
        result_id = request.path_params["record_id"]
        try:
            findings.clear(result_id, who)
        except NoSuchResult as err:
            raise HTTPException(404, str(err)) from None
        return JSONResponse(record(result_id))

    def worklist(request: Request) -> Response:
        reviewer(request)
        limit = request.query_params.get("limit") or "100"
        if not limit.isdigit():
            raise HTTPException(400, f"limit must be an integer from 1 to {MAX_WORKLIST}")
        return JSONResponse({"results": findings.worklist(int(limit)),
                             "total": findings.worklist_count(),
                             "sources": list(SOURCES)})

    async def import_csv(request: Request) -> Response:
        who = reviewer(request)
        text = await _csv_text(request)
        try:
            report = findings.import_csv(text, who,
                                         list(station.slot.current.info["class_names"]))
        except FindingError as err:
            raise HTTPException(400, str(err)) from None
        return JSONResponse(report)

    def pending(request: Request) -> Response:
        reviewer(request)
        return JSONResponse({"pending": findings.pending()})

    def discard(request: Request) -> Response:
        reviewer(request)
        if not findings.discard_pending(request.path_params["pending_id"]):
            raise HTTPException(404, "no such pending finding")
        return Response(status_code=204)

    return [
        Route("/api/history/{record_id:int}/finding", put_finding, methods=["PUT"]),
        Route("/api/history/{record_id:int}/finding", delete_finding, methods=["DELETE"]),
        Route("/api/worklist", worklist, methods=["GET"]),
        Route("/api/findings/import", import_csv, methods=["POST"]),
        Route("/api/findings/pending", pending, methods=["GET"]),
        Route("/api/findings/pending/{pending_id:int}", discard, methods=["DELETE"]),
    ]


async def _csv_text(request: Request) -> str:
    """The CSV of a text/csv body, or of the one file part of a multipart form."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=2, max_fields=MAX_BODY_FIELDS) as form:
            files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if len(files) != 1:
                raise HTTPException(400, f"send one CSV file in the form, not {len(files)}")
            data = await files[0].read()
    else:
        data = await request.body()
    if not data.strip():
        raise HTTPException(400, "no CSV: send it as a text/csv body or one file in a form")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(400, "the CSV must be UTF-8 text") from None
