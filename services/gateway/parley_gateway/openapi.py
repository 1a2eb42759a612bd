"""The OpenAPI 3.1 document of the public API, generated from the endpoint table and the
same JSON Schemas the gateway validates request bodies and query parameters with."""
from __future__ import annotations

import copy


from parley_common.errors import STATUS_BY_CODE

from . import schemas as s
from .http import Endpoint

ERROR_DESCRIPTIONS = {
    400: "invalid_json: the body is not a JSON object.",
    401: "unauthenticated (missing/invalid/expired/revoked token) or invalid_credentials.",
    403: "forbidden; account_deactivated (login to an account an administrator deactivated).",
    404: "not_found (also for private rooms you are not a member of).",
    409: "username_taken, email_taken, room_exists, too_many_reactions or conflict.",
    413: "too_large: the body exceeds the size limit.",
    415: "unsupported_media_type: send Content-Type: application/json (an avatar upload: "
         "image/png, image/jpeg or image/webp).",
    422: "validation_failed: details maps each bad field to a sentence.",
    429: "rate_limited: see the Retry-After header.",
    503: "unavailable: a dependency is down; see the Retry-After header.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "integer"}}}


def _strip_extensions(schema):
    """Our x- keywords are fine in OpenAPI 3.1, but keep the published schemas tidy."""
    if isinstance(schema, dict):
        return {k: _strip_extensions(v) for k, v in schema.items() if k != "x-message"}
    if isinstance(schema, list):
        return [_strip_extensions(v) for v in schema]
    return schema


def _parameters(endpoint: Endpoint) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": endpoint.path_schemas.get(name, s.ID)}
              for name in endpoint.path_params]
    for name, schema in endpoint.query.items():
        param = {"name": name, "in": "query", "required": False,
                 "schema": _strip_extensions(schema)}
        if "x-message" in schema:
            param["description"] = schema["x-message"].replace("{name}", name)
        params.append(param)
    return params


def _operation(endpoint: Endpoint) -> dict:
    op: dict = {"operationId": endpoint.operation_id, "summary": endpoint.summary,
                "tags": [endpoint.tag]}
    if endpoint.description:
        op["description"] = endpoint.description
    params = _parameters(endpoint)
    if params:
        op["parameters"] = params
    if endpoint.body is not None:
        op["requestBody"] = {"required": not endpoint.body_optional, "content": {
            "application/json": {"schema": _strip_extensions(endpoint.body)}}}
    if endpoint.body_media:
        op["requestBody"] = {"required": True, "content": {
            media_type: {"schema": schema} for media_type, schema in endpoint.body_media.items()}}
    responses: dict = {}
    for status, schema in endpoint.responses.items():
        if schema is None:
            responses[str(status)] = {"description": "No content."}
        else:
            responses[str(status)] = {"description": "Success.", "content": {
                endpoint.content_type: {"schema": _strip_extensions(schema)}}}
    for status in sorted(set(endpoint.errors) | {500}):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    op["responses"] = responses
    if endpoint.auth:
        op["security"] = [{"bearerAuth": []}]
    else:
        op["security"] = []
    return op


def _error_responses() -> dict:
    responses = {}
    for status in sorted(set(STATUS_BY_CODE.values())):
        codes = sorted(code for code, st in STATUS_BY_CODE.items() if st == status)
        response = {"description": ERROR_DESCRIPTIONS.get(status, ", ".join(codes) + "."),
                    "content": {"application/json": {"schema": s.ref("Error")}}}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        responses[f"E{status}"] = response
    return responses


WEBSOCKET_DESCRIPTION = """\
Upgrade to a WebSocket of JSON text frames (each with `type`; an optional `ref` is echoed).
Authenticate with the Authorization header or the first frame `{"type":"auth","token":...}`
within 5 seconds. Client frames: auth, subscribe {room_id, after_seq?}, unsubscribe, send
{room_id, text, client_id, reply_to?}, typing, read {room_id, seq}, ping. Server frames: ready,
subscribed, unsubscribed, ack, message, message_edited, message_deleted, member_joined,
member_left, presence, typing, read, room_created, room_updated, room_deleted, pong, error,
and mention {room_id, message} to each user a new or edited message newly mentions (also
without a subscription to its room).
reaction_added and reaction_removed (to the room's subscribers: {room_id, message_id, seq,
emoji, user_id, reactions: [{emoji, count}]}, the message's counts after the change; `me` is
yours to keep: user_id is who reacted).
Close codes: 4401 not authenticated, 4408 no auth frame in time, 4001 session revoked,
4429 too many messages, 1009 frame too large (64 KiB), 1001 server draining."""


def build(endpoints: list[Endpoint]) -> dict:
    paths: dict = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    paths["/api/v1/ws"] = {"get": {
        "operationId": "websocket", "summary": "The realtime WebSocket.", "tags": ["realtime"],
        "description": WEBSOCKET_DESCRIPTION,
        "parameters": [{"name": "Upgrade", "in": "header", "required": True,
                        "schema": {"type": "string", "enum": ["websocket"]}}],
        "security": [{"bearerAuth": []}, {}],
        "responses": {"101": {"description": "Switching protocols to WebSocket."},
                      "400": {"$ref": "#/components/responses/E400"},
                      "503": {"$ref": "#/components/responses/E503"}}}}
    paths["/"] = {"get": {
        "operationId": "webclient", "summary": "The web client (index.html).", "tags": ["web"],
        "security": [],
        "responses": {"200": {"description": "The single-page web client.",
                              "content": {"text/html": {"schema": {"type": "string"}}}}}}}
    paths["/static/{path}"] = {"get": {
        "operationId": "static_asset", "summary": "The web client's scripts and styles.",
        "tags": ["web"], "security": [],
        "parameters": [{"name": "path", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file (Cache-Control: no-cache, ETag)."},
                      "404": {"$ref": "#/components/responses/E404"}}}}
    ordered = dict(sorted(paths.items(), key=lambda item: (not item[0].startswith("/api"), item[0])))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley public API", "version": "1.0.0",
                 "description": "REST and WebSocket API of the Parley gateway. Every error is "
                                "`{\"error\": {\"code\", \"message\", \"details\"}}`. Request "
                                "bodies must be JSON objects (Content-Type: application/json, "
                                "at most the configured size); unknown body fields are ignored."},
        "servers": [{"url": "/"}],
        "paths": ordered,
        "components": {
            "schemas": copy.deepcopy(s.COMPONENTS),
            "responses": _error_responses(),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"}},
        },
        "tags": [{"name": name} for name in
                 ("auth", "users", "rooms", "messages", "realtime", "operations", "admin", "web")],
    }


