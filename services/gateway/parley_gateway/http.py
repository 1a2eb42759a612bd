"""HTTP plumbing shared by every REST handler: the endpoint table entry, JSON body and query
validation against the published schemas (WebSocket frames are checked the same way, ws.py),
the error middleware and the security headers."""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import redis.exceptions
from aiohttp import web
from jsonschema import Draft202012Validator, validators

from parley_common.errors import (InternalError, InvalidJson, NotFound, ParleyError, TooLarge,
                                  Unauthenticated, Unavailable, UnsupportedMediaType,
                                  ValidationFailed)
from parley_common.limits import MAX_ID
from parley_common.logs import get_logger
from parley_common.text import PROBLEM, loads_bounded, storable, unstorable_details

from . import schemas
from .appkeys import METRICS, RATELIMIT, RPC, SETTINGS, TOKENS
from .metrics import NULL_METRICS
from .tokens import Principal, bearer

log = get_logger("parley_gateway.http")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
PATH_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ID}}}")
BODY_METHODS = {"POST", "PUT", "PATCH"}


# --- endpoint table ---------------------------------------------------------------------------
@dataclass
class Ctx:
    """What a REST handler gets: the request, the verified caller, the checked input."""
    request: web.Request
    principal: Principal | None
    body: dict
    query: dict

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    async def rpc(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.app[RPC].call(service, method, *args, **kwargs)


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool = True
    body: dict | None = None                       # JSON Schema of the request body
    body_optional: bool = False                    # a request without a body is fine too
    query: dict[str, dict] = field(default_factory=dict)  # name -> schema
    responses: dict[int, dict | None] = field(default_factory=dict)  # status -> schema / None
    errors: tuple[int, ...] = ()
    description: str = ""
    operation_id: str = ""
    content_type: str = "application/json"         # of the success response
    # Path parameters that are not ids (e.g. a reaction's emoji): not held to PATH_ID (the
    # service checks them), and documented with this schema.
    path_schemas: dict[str, dict] = field(default_factory=dict)
    # A body that is not JSON (media type -> schema), read by the handler itself.
    body_media: dict[str, dict] | None = None

    def __post_init__(self) -> None:
        if not self.operation_id:
            self.operation_id = self.handler.__name__
        self._body_validator = SchemaValidator(self.body) if self.body else None

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def make_handler(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        for name in endpoint.path_params:
            if name not in endpoint.path_schemas and not PATH_ID.fullmatch(request.match_info[name]):
                raise NotFound()
        principal = await authenticate(request) if endpoint.auth else None
        query = parse_query(request, endpoint.query)
        body: dict = {}
        if endpoint.body is not None and (request.can_read_body or not endpoint.body_optional):
            body = await read_json(request, endpoint._body_validator)
        if principal is not None and request.method != "GET":
            await request.app[RATELIMIT].check_write(principal.user_id)
        return await endpoint.handler(Ctx(request, principal, body, query))

    handle.__name__ = endpoint.operation_id
    return handle


# --- authentication ---------------------------------------------------------------------------
def bearer_token(request: web.Request) -> str:
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        raise Unauthenticated("Send 'Authorization: Bearer <access_token>'.")
    return token


async def authenticate(request: web.Request) -> Principal:
    principal = await request.app[TOKENS].verify(bearer_token(request))
    request["principal"] = principal
    return principal


# --- input validation -------------------------------------------------------------------------
# A whole number is an int, never 1.0 (which jsonschema would take): the services' checks do
# not take it either.
SchemaValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)))

_TYPE_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "array": "a list", "object": "an object",
               "null": "null"}


def _label(name: str, schema: dict) -> str:
    return schema.get("title") or name.replace("_", " ").capitalize()


def _sentence(error, name: str, top_schema: dict) -> str:
    """One human sentence for a jsonschema error on field ``name``."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    nested = len(error.absolute_path) > 1
    custom = top_schema.get("x-message") if nested else schema.get("x-message")
    label = _label(name, top_schema)
    kind = error.validator
    if kind == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        if nested and custom:
            return custom
        return f"{label} must be {' or '.join(_TYPE_WORDS.get(t, t) for t in expected)}."
    if kind == "enum":
        return f"{label} must be one of: {', '.join(map(str, error.validator_value))}."
    if custom:
        return custom.replace("{name}", name)
    if kind == "minLength":
        n = error.validator_value
        return f"{label} must not be empty." if n == 1 else f"{label} must be at least {n} characters."
    if kind == "maxLength":
        return f"{label} must be at most {error.validator_value} characters."
    if kind == "minimum":
        return f"{label} must be at least {error.validator_value}."
    if kind == "maximum":
        return f"{label} must be at most {error.validator_value}."
    if kind == "maxItems":
        return f"{label} may hold at most {error.validator_value} items."
    return f"{label} is invalid."


def validation_details(validator: Draft202012Validator, instance: dict) -> dict[str, str]:
    """Every bad field of ``instance`` -> one sentence (the first problem found per field)."""
    details: dict[str, str] = {}
    properties = validator.schema.get("properties", {})
    for error in validator.iter_errors(instance):
        if error.validator == "required" and not error.absolute_path:
            for name in error.validator_value:
                if name not in instance:
                    details.setdefault(name, f"{_label(name, properties.get(name, {}))} is required.")
            continue
        name = str(error.absolute_path[0]) if error.absolute_path else "body"
        details.setdefault(name, _sentence(error, name, properties.get(name, {})))
    return details


def _trimmed(body: dict) -> dict:
    return {key: value.strip() if key in schemas.TRIMMED and isinstance(value, str) else value
            for key, value in body.items()}


def check_fields(validator: Draft202012Validator, instance: dict) -> None:
    """ValidationFailed naming every bad field of a JSON object (a REST body or a WebSocket
    frame), checked as the API's rules say: after trimming the fields it trims."""
    details = validation_details(validator, _trimmed(instance))
    if details:
        raise ValidationFailed(details=details)


async def read_json(request: web.Request, validator: Draft202012Validator | None) -> dict:
    """The request's JSON object, or the right error: 415, 413, 400, 422."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The body must be at most {limit} bytes.", {"max_bytes": limit})
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(f"The body must be at most {limit} bytes.", {"max_bytes": limit}) from None
    if len(raw) > limit:
        raise TooLarge(f"The body must be at most {limit} bytes.", {"max_bytes": limit})
    try:
        body = loads_bounded(raw.decode(request.charset or "utf-8"))
    except (ValueError, UnicodeDecodeError, LookupError):
        raise InvalidJson() from None
    if not isinstance(body, dict):
        raise InvalidJson("The request body must be a JSON object.")
    unstorable = unstorable_details(body)
    if unstorable:
        raise ValidationFailed(details=unstorable)
    if validator is not None:
        check_fields(validator, body)
    return body


_INTEGER = re.compile(r"-?\d{1,18}")


def parse_query(request: web.Request, spec: dict[str, dict]) -> dict:
    """The declared query parameters, converted and checked (422 naming each bad one).
    Undeclared parameters are ignored; absent ones take their schema default (or None)."""
    values: dict[str, Any] = {}
    details: dict[str, str] = {}
    for name, schema in spec.items():
        raw = request.query.get(name)
        if raw is None or raw == "":  # "?cursor=" means no cursor
            values[name] = schema.get("default")
            continue
        value: Any = raw
        if not storable(raw):
            details[name] = f"{name} {PROBLEM}."
            continue
        if schema.get("type") == "integer":
            if not _INTEGER.fullmatch(raw.strip()):
                details[name] = _query_sentence(name, schema)
                continue
            value = int(raw.strip())
        if any(True for _ in Draft202012Validator(schema).iter_errors(value)):
            details[name] = _query_sentence(name, schema)
            continue
        values[name] = value
    if details:
        raise ValidationFailed(details=details)
    return values


def _query_sentence(name: str, schema: dict) -> str:
    return schema.get("x-message", "{name} is invalid.").replace("{name}", name)


# --- responses --------------------------------------------------------------------------------
def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


def no_content() -> web.Response:
    return web.Response(status=204)


def error_response(exc: ParleyError) -> web.Response:
    headers = {}
    if exc.code in ("rate_limited", "unavailable"):
        headers["Retry-After"] = str(getattr(exc, "retry_after", 1))
    if exc.code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="parley"'
    return json_response(exc.to_body(), exc.status, headers)


_HTTP_ERRORS = {
    404: lambda exc: NotFound("There is nothing at this path."),
    405: lambda exc: ParleyError("This path does not support that method.",
                                 {"allowed": sorted(exc.allowed_methods)}
                                 if hasattr(exc, "allowed_methods") else {},
                                 code="method_not_allowed"),
    413: lambda exc: TooLarge(),
    415: lambda exc: UnsupportedMediaType(),
}


def _from_http_exception(exc: web.HTTPException) -> ParleyError:
    make = _HTTP_ERRORS.get(exc.status)
    if make is not None:
        return make(exc)
    code = "bad_request" if exc.status < 500 else "internal_error"
    return ParleyError(exc.reason or "The request could not be handled.", code=code)


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Every failure becomes the public JSON error shape; nothing ever shows a traceback."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ParleyError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and 304s are not errors
        response = error_response(_from_http_exception(exc))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except redis.exceptions.RedisError as exc:
        log.error("cache_unavailable", path=request.path, error=repr(exc))
        response = error_response(Unavailable("The cache is not answering; try again shortly.",
                                              retry_after=2))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path)
        response = error_response(InternalError())
    metrics = request.app.get(METRICS, NULL_METRICS)  # the layer's unit tests run without one
    route = _route_label(request)
    metrics.http_requests.labels(request.method, route, str(response.status)).inc()
    metrics.http_latency.labels(route).observe(time.perf_counter() - started)
    return response


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the security headers on every response, errors and files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
