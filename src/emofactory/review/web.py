"""The review page (seed 003, App. C.1): a Starlette app the catalog serves beside its gRPC API.
An annotator signs in with the name and token `emofactory review annotator` gave them, is handed
the next clip of a release that needs their label, sees and hears it with its transcript and frame
(never the factory's label: no anchoring), answers with keys 1-7 or skips, and moves on. Leads also
see the results: majorities, Fleiss' kappa, and the factory's label against the people's."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from emofactory.core.classes import CANONICAL
from emofactory.core.errors import InvalidRequest, NotFound
from emofactory.review import assignments as work
from emofactory.review.results import release_review
from emofactory.stages.catalog import db
from emofactory.stages.catalog.config import CatalogConfig

HERE = Path(__file__).parent
COOKIE = "emo_review"
MAX_FORM = 4096  # bytes: a name and token, or one label
MEDIA = {"mp4": ("mp4_key", "video/mp4"), "jpg": ("frame_key", "image/jpeg")}
STATUS = {InvalidRequest: 400, work.NotYours: 403, NotFound: 404, work.AlreadyAnswered: 409}
HEADERS = {
    # Everything the page loads comes from this app; no inline script, no framing.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def check_config(config: CatalogConfig) -> None:
    if not 0 <= config.review_port <= 65535:
        raise ValueError(f"catalog.review_port: 0 (no page) to 65535, not {config.review_port}")
    if not 1 <= config.review_annotators <= 100:
        raise ValueError(f"catalog.review_annotators: 1 to 100 labels per clip, not {config.review_annotators}")
    if not 10 <= config.review_lease_s <= 7 * 86400:  # NaN fails too
        raise ValueError(f"catalog.review_lease_s: 10 s to a week, not {config.review_lease_s}")


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    *((k.lower().encode(), v.encode()) for k, v in HEADERS.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class ReviewApp:
    """The routes over the catalog's database (`config.database_url`) and object store; `cache`
    holds clip media fetched from the store, so the browser can seek within them (Range)."""

    def __init__(self, config: CatalogConfig, store, cache: Path):
        check_config(config)
        self.config, self.store, self.cache = config, store, Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.sessions = db.sessions(config.database_url)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        routes = [
            Route("/", self.home),
            Route("/signin", self.sign_in, methods=["POST"]),
            Route("/signout", self.sign_out, methods=["POST"]),
            Route("/healthz", lambda _r: Response("ok")),
            Route("/r/{release_id}", self.next_clip),
            Route("/r/{release_id}/clips/{clip_id}", self.answer, methods=["POST"]),
            Route("/r/{release_id}/media/{clip_id}.{ext}", self.media),
            Route("/r/{release_id}/results", self.results),
            Route("/r/{release_id}/results.json", self.results_json),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        handlers = {HTTPException: self.error, **dict.fromkeys(STATUS, self.error)}
        self.app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], exception_handlers=handlers)

    # -- helpers -----------------------------------------------------------------------------
    def page(self, request: Request, template: str, status_code: int = 200, **context) -> Response:
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    async def db(self, fn, *args):
        """fn(session, *args) on a worker thread: the database never blocks the event loop."""

        def run():
            with self.sessions() as session:
                return fn(session, *args)

        return await run_in_threadpool(run)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form, refused unread when it says it is larger than any of ours (or says nothing)."""
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_FORM:
            raise HTTPException(413, f"a form of at most {MAX_FORM} bytes, with its Content-Length")
        return {k: str(v) for k, v in (await request.form()).items()}

    async def annotator(self, request: Request, lead: bool = False) -> db.Annotator:
        who = await self.db(work.annotator_of, request.cookies.get(COOKIE, ""))
        if who is None:
            raise HTTPException(401, "sign in first, with the name and token `emofactory review annotator` gave you")
        if lead and not who.lead:
            raise HTTPException(403, "the results are for leads: annotators never see the factory's labels")
        return who

    async def error(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", None) or next(s for t, s in STATUS.items() if isinstance(exc, t))
        message = getattr(exc, "detail", None) or str(exc)
        if request.url.path.endswith(".json") or "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": message}, status_code=status)
        return self.page(request, "error.html", status, message=message, status=status)

    # -- routes ------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        who = await self.db(work.annotator_of, request.cookies.get(COOKIE, ""))
        if who is None:
            return self.page(request, "signin.html")
        releases = await self.db(lambda s: [(r.release_id, r.name) for r in work.releases(s)])
        return self.page(request, "releases.html", who=who, releases=releases)

    async def sign_in(self, request: Request) -> Response:
        form = await self.form(request)
        name, token = form.get("name", "")[:64], form.get("token", "")[:256]
        who = await self.db(work.annotator_of, token)
        if who is None or who.name != name:
            return self.page(request, "signin.html", 401, failed=True)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=self.config.review_secure_cookie, max_age=7 * 86400
        )
        return response

    async def sign_out(self, request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def next_clip(self, request: Request) -> Response:
        who = await self.annotator(request)
        release_id = request.path_params["release_id"]

        def pick(session):
            release = work.release_or_404(session, release_id)
            clip_id = work.next_clip(
                session, release_id, who.name, self.config.review_annotators, self.config.review_lease_s
            )
            clip = session.get(db.Clip, clip_id) if clip_id else None
            return release.name, clip, work.progress(session, release_id, who.name)

        name, clip, (done, total) = await self.db(pick)
        if clip is None:
            return self.page(request, "done.html", who=who, release_id=release_id, name=name, done=done)
        return self.page(
            request, "clip.html", who=who, release_id=release_id, name=name, clip=clip, done=done, total=total,
            classes=CANONICAL, unsure=work.UNSURE,
        )  # fmt: skip

    async def answer(self, request: Request) -> Response:
        who = await self.annotator(request)
        release_id, clip_id = request.path_params["release_id"], request.path_params["clip_id"]
        label = (await self.form(request)).get("label", "")
        await self.db(work.answer, release_id, clip_id, who.name, label)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"clip_id": clip_id, "label": label})
        return RedirectResponse(f"/r/{release_id}", status_code=303)

    async def media(self, request: Request) -> Response:
        await self.annotator(request)
        release_id, clip_id, ext = (request.path_params[k] for k in ("release_id", "clip_id", "ext"))
        if ext not in MEDIA:
            raise HTTPException(404, f"no {ext!r} media: {', '.join(MEDIA)}")
        field, content_type = MEDIA[ext]
        clip = await self.db(work.in_release, release_id, clip_id)
        key = getattr(clip, field)
        if not key:
            raise HTTPException(404, f"clip {clip_id!r} has no {ext}")
        path = self.cache / f"{hashlib.sha256(key.encode()).hexdigest()}.{ext}"
        if not path.exists():
            await run_in_threadpool(self._fetch, key, path)
        return FileResponse(path, media_type=content_type)

    def _fetch(self, key: str, path: Path) -> None:
        partial = path.with_name(f".{path.name}.{threading.get_ident()}")
        self.store.get_file(self.store.ref(key), partial)
        partial.replace(path)

    async def results(self, request: Request) -> Response:
        who = await self.annotator(request, lead=True)
        result = await self.db(release_review, request.path_params["release_id"], self.config.review_annotators)
        return self.page(request, "results.html", who=who, r=result, classes=CANONICAL)

    async def results_json(self, request: Request) -> Response:
        await self.annotator(request, lead=True)
        return JSONResponse(
            await self.db(release_review, request.path_params["release_id"], self.config.review_annotators)
        )


def serve_in_thread(app, host: str, port: int, patience_s: float = 30.0) -> uvicorn.Server:
    """The page on its own thread and event loop, beside the gRPC server (as the metrics are); once
    it listens. A port it cannot bind stops the caller here, rather than a service without its page."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))

    def run():
        with contextlib.suppress(SystemExit):  # uvicorn exits where it cannot bind: said below
            server.run()

    thread = threading.Thread(target=run, name="review-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + patience_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the review page could not listen on {host}:{port}")
        time.sleep(0.02)
    return server
