"""Reading and checking JSON request bodies: anything malformed is the client's
mistake (400 with a message that says what is wrong), never a 500."""

from __future__ import annotations

from collections.abc import Iterable
from zExceptions import BadRequest

import json


TOO_DEEP = "nested too deeply"


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def json_object(request) -> dict:
    """The body as a JSON object; an empty body is ``{}``.

    Strict JSON: ``NaN`` and ``Infinity`` (which Python's parser accepts) are
    refused, and so is nesting too deep to parse.
    """
    try:
        body = json.loads(request.get("BODY") or "{}", parse_constant=_not_json)
    except RecursionError:
        # Not chained: the parser's thousand frames would only flood the log.
        raise BadRequest(f"expected a JSON object as the body: {TOO_DEEP}") from None
    except ValueError as exc:
        raise BadRequest(f"expected a JSON object as the body: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest(
            f"expected a JSON object as the body, not {type(body).__name__}"
        )
    return body


# Below this many brackets a body cannot be nested deeper than Python's parser goes.
_SHALLOW = 500


def refuse_unparsable_json(site, event) -> None:
    """Answer 400 to a JSON body nested too deeply to parse, before traversal ends.

    plone.restapi's JWT plugin reads every ``application/json`` body while the user
    is authenticated, and lets the parser's RecursionError through as a 500 before
    any service runs. Checked on entering a Plone site: a count of brackets (cheap)
    and, only for a body with very many, a trial parse.
    """
    request = event.request
    content_type = request.getHeader("Content-Type") or ""
    if not content_type.startswith("application/json"):
        return
    body = request.get("BODY") or b""
    if isinstance(body, bytes):
        brackets = body.count(b"[") + body.count(b"{")
    else:
        brackets = body.count("[") + body.count("{")
    if brackets < _SHALLOW:
        return
    try:
        json.loads(body)
    except RecursionError:
        raise BadRequest(f"expected a JSON object as the body: {TOO_DEEP}") from None
    except ValueError:
        return  # the service says what is wrong with it


def known_keys(body: dict, allowed: Iterable[str]) -> dict:
    """``body``, refused if it has keys other than ``allowed`` (typos are not
    ignored silently)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; expected {', '.join(allowed)}"
        )
    return body


def non_negative_int(body: dict, key: str, default: int = 0) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{key} must be a non-negative integer, not {value!r}")
    return value


def string_list(body: dict, key: str) -> list[str] | None:
    """The list of strings at ``key``; ``None`` when it is absent or null."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return value
