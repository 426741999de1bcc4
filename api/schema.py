"""OpenAPI: the token scheme, and every operation documents the problem-details
errors it can answer with (api.problems), so clients and schemathesis know their shape."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ps_live_<key id>_<secret>",
            "description": "A brand's or agency's API token (brand settings → API tokens).",
        }


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
}
ERRORS = {
    "400": "The request is not valid; `errors` names the fields.",
    "401": "No valid token or session.",
    "403": "The token lacks the scope, or the member's role does not allow this.",
    "404": "No such thing, or not one the caller may see.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflicts with the current state (someone decided first; this Idempotency-Key is in flight; "
    "the persona is still used).",
    "412": "If-Match is stale; the ETag header carries the current one.",
    "415": "Unsupported media type.",
    "422": "Cannot be done as asked (quota, an Idempotency-Key reused with another payload).",
    "429": "Too many requests; retry after Retry-After seconds.",
}


def problem_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                content = {"application/problem+json": {"schema": reference}}
                responses.setdefault(status, {"description": description, "content": content})
    return result
