"""HTTP in front of the Station: the pages and the JSON API, behind edge.serve.guard.Guard.

    GET  /  /history  /about            the triage page, the history, the model's provenance
    POST /api/classify                  multipart files (or one raw image body) -> results
    GET  /api/model  /api/health        provenance and reload state; liveness and the queue
    GET  /api/history[.csv]             newest first; ?status=ok|refer|error&class=NAME&study=UID
    GET|DELETE /api/history/{id}        one result; GET /api/history/{id}/{image|key}.png
    GET|POST /login, POST /logout       the login form (edge/serve/api_login.py)
    GET  /api/me  /api/users  /api/audit[.csv]   who is asking; users, audit log (api_people.py)

Every route needs at least an operator (edge/serve/roles.py); deleting a result an admin.

Status codes: 200 classified (a batch is 200 when any file classified), 422 nothing in the
request decoded (the decoder's reason in `error`), 413 body over the limit or too many files,
401 not logged in (no or wrong access code, session or token), 403 a cross-site write or a role
too low, 400 a bad request (or a Host that is not this machine while bound to loopback: DNS
rebinding), 404, 503 the queue stayed full for --queue-wait seconds (Retry-After).
Pages and assets come from edge/serve/static/ in memory: a URL never names a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import time
from importlib import resources

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.classifier import STATUS_ERROR
from edge.serve import api_findings, api_login, api_people, api_site
from edge.serve.guard import Guard, error_response
from edge.serve.history import STATUSES
from edge.serve.params import int_param
from edge.serve.roles import ADMIN, OPERATOR, require
from edge.serve.station import Station
from edge.serve.work import QueueFull, Upload

NOTICE = ("A result is a prompt for a clinician to look at the image, never a diagnosis: the "
          "model can be wrong, and it only knows the four classes it was trained on.")
PAGES = {"/": "index.html", "/history": "history.html", "/review": "review.html",
         "/site": "site.html", "/about": "about.html"}
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_FORM_FILES = 10_000  # the real limit (queue size) is checked after parsing, as a 413
RETRY_AFTER_S = 2
# What the audit log keeps of a deleted result: enough to say which one it was.
DELETED_SUMMARY = ("filename", "created_at", "status", "predicted_class", "probability",
                   "model_version", "file_sha256")


def create_app(station: Station) -> Starlette:
    assets = _load_assets()

    room = _Room()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        room.loop = asyncio.get_running_loop()
        station.queue.listeners.append(room.notify)
        station.start()
        try:
            yield
        finally:
            station.stop()

    async def page(request: Request) -> Response:
        return _asset(assets, PAGES[request.url.path])

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            raise HTTPException(404, f"no asset {name!r}")
        return _asset(assets, name)

    def health(request: Request) -> Response:
        require(request, OPERATOR)
        return JSONResponse({"ok": True, "model_version": station.slot.current.version,
                             "queue": {"pending": station.queue.pending,
                                       "capacity": station.queue.capacity},
                             "processed": station.queue.processed,
                             "dicom": station.dicom.status() if station.dicom else None})

    def model_info(request: Request) -> Response:
        require(request, OPERATOR)
        options = station.options
        return JSONResponse(station.slot.current.info | {
            "notice": NOTICE,
            "reload": {"last_error": _public_error(station.slot.last_error),
                       "events": station.slot.events},
            "limits": {"max_upload_bytes": options.max_upload_bytes,
                       "max_files_per_request": options.queue_size},
            "keep_images": options.keep_images,
            "access_code_required": bool(options.access_code),
        })

    async def classify(request: Request) -> Response:
        require(request, OPERATOR)
        uploads = await _read_uploads(request, station.options.queue_size)
        deadline = time.monotonic() + station.options.queue_wait_s
        while True:  # a full queue: wait for room (each finished file wakes us), then 503
            try:
                futures = station.queue.submit(uploads)
                break
            except QueueFull as err:
                if not await room.wait(deadline - time.monotonic()):
                    return error_response(
                        503, "busy", f"the station is busy ({err}); try again shortly",
                        headers={"Retry-After": str(RETRY_AFTER_S)})
        results = [await asyncio.wrap_future(future) for future in futures]
        body = {"results": results, "model_version": station.slot.current.version,
                "notice": NOTICE}
        if all(result["status"] == STATUS_ERROR for result in results):
            first = results[0]
            return JSONResponse({"error": first["reason"], "detail": first["error"]} | body,
                                status_code=422)
        return JSONResponse(body)

    def history_list(request: Request) -> Response:
        require(request, OPERATOR)
        status, predicted_class = _history_filters(request)
        limit = int_param(request, "limit", 200)
        before = int_param(request, "before", None)
        study = request.query_params.get("study") or None
        results = station.findings.attach(
            station.history.list(status, predicted_class, limit, before, study))
        classes = list(station.slot.current.info["class_names"])
        classes += [name for name in station.history.classes() if name not in classes]
        return JSONResponse({"results": results, "classes": classes,
                             "total": station.history.count(status, predicted_class, study)})

    def history_csv(request: Request) -> Response:
        require(request, OPERATOR)
        status, predicted_class = _history_filters(request)
        text = station.history.to_csv(station.slot.current.info["class_names"], status,
                                      predicted_class, findings=station.findings.by_result(),
                                      study=request.query_params.get("study") or None)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Response(text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="cxr-history-{stamp}.csv"'})

    def history_get(request: Request) -> Response:
        require(request, OPERATOR)
        record = station.history.get(request.path_params["record_id"])
        if record is None:
            raise HTTPException(404, "no such result")
        return JSONResponse(station.findings.attach([record])[0])

    def history_delete(request: Request) -> Response:
        who = require(request, ADMIN)
        record_id = request.path_params["record_id"]
        with station.database.transaction() as db:  # the row goes with its audit entry or not
            record = station.history.get(record_id)
            if record is None:
                raise HTTPException(404, "no such result")
            station.audit.record(who.name, "result.delete", f"result {record_id}",
                                 {key: record.get(key) for key in DELETED_SUMMARY}, None,
                                 connection=db)
            station.history.delete(record_id)
        return Response(status_code=204)

    def history_image(request: Request) -> Response:
        require(request, OPERATOR)
        name = request.path_params["name"]
        data = None
        if re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
            data = station.history.image(request.path_params["record_id"], name)
        if data is None:
            raise HTTPException(404, "no kept image (start the station with --keep-images to "
                                     "keep them)")
        return Response(data, media_type="image/png")

    routes = [Route(path, page) for path in PAGES] + [
        Route("/static/{name}", static),
        Route("/api/health", health),
        Route("/api/model", model_info),
        Route("/api/classify", classify, methods=["POST"]),
        Route("/api/history", history_list),
        Route("/api/history.csv", history_csv),
        Route("/api/history/{record_id:int}", history_get, methods=["GET"]),
        Route("/api/history/{record_id:int}", history_delete, methods=["DELETE"]),
        Route("/api/history/{record_id:int}/{name}.png", history_image),
    ] + api_findings.routes(station) + api_site.routes(station) + api_login.routes(station) \
        + api_people.routes(station)
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(Guard, station=station)],
                     exception_handlers={HTTPException: _http_error})


class _Room:
    """Wakes the requests waiting for room in the queue; notify() is called by the worker."""

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()

    def notify(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._event.set()  # every waiter retries; those that still do not fit wait again
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """False when timeout passed without any file finishing."""
        if timeout <= 0:
            return False
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


async def _read_uploads(request: Request, max_files: int) -> list[Upload]:
    """The request's files: multipart parts (any field name), or the raw body as one file."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        data = await request.body()
        if not data:
            raise HTTPException(400, "no file: send multipart/form-data with one or more files, "
                                     "or an image as the request body")
        name = request.headers.get("x-filename", "upload")
        return [Upload(_label(name), data, _upload_id(request.headers.get("x-upload-id")))]
    async with request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FILES) as form:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        ids = [str(value) for value in form.getlist("upload_id")]
        if not files:
            raise HTTPException(400, "no file in the form: add one or more file parts")
        if len(files) > max_files:
            raise HTTPException(413, f"{len(files)} files in one request; this station takes at "
                                     f"most {max_files} at a time (--queue-size)")
        if ids and len(ids) != len(files):
            raise HTTPException(400, f"{len(ids)} upload_id fields for {len(files)} files")
        ids = ids or [None] * len(files)
        return [Upload(_label(f.filename), await f.read(), _upload_id(i))
                for f, i in zip(files, ids, strict=True)]


def _label(filename: str | None) -> str:
    """A name for people from the client's file name: last part only, printable, bounded."""
    name = re.split(r"[/\\]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "upload"


def _upload_id(value: str | None) -> str | None:
    if not value:
        return None
    if not UPLOAD_ID.match(value):
        raise HTTPException(400, "upload_id must be 8-64 letters, digits, '-' or '_'")
    return value


def _history_filters(request: Request) -> tuple[str | None, str | None]:
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {list(STATUSES)}")
    return status, request.query_params.get("class") or None


def _load_assets() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("edge.serve") / "static"
    assets = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in MEDIA_TYPES:
            assets[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return assets


def _asset(assets, name: str) -> Response:
    data, media_type = assets[name]
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-cache"})


_HTTP_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large"}


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return error_response(exc.status_code, _HTTP_ERRORS.get(exc.status_code, "error"),
                          str(exc.detail), headers=exc.headers)


def _public_error(error: dict | None) -> dict | None:
    return None if error is None else {"at": error["at"], "error": error["error"]}
