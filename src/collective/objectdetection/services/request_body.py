"""Reading a JSON request body: anything else is the client's mistake (400)."""

from plone.restapi.deserializer import json_body
from plone.restapi.exceptions import DeserializationError
from zExceptions import BadRequest


def json_object(request) -> dict:
    """The body as a JSON object; an empty body is ``{}``."""
    try:
        return json_body(request)
    except DeserializationError as exc:
        # plone.restapi's message: "No JSON object could be decoded" or "Malformed body"
        raise BadRequest(f"expected a JSON object as the body: {exc}") from exc
