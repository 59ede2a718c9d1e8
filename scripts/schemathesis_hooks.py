"""Schemathesis hooks for scripts/schemathesis.sh.

A custom check: every client error (4xx) has Latchkey's one error shape, the
RFC 6749 section 5.2 body: a JSON object with a string `error` and, if present,
a string `error_description`. And one hook: the events pull's `wait` is capped
at one second, so the fuzzer does not spend its time in long-polls (how long a
pull may wait is not what this run tests).
"""

import json

import schemathesis


@schemathesis.check
def rfc6749_error_shape(ctx, response, case):
    """A 4xx answer is `{"error": "...", "error_description": "..."}` as JSON."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if not content_type.split(";")[0].strip().lower() == "application/json":
        raise AssertionError(
            f"a {response.status_code} answer is {content_type or 'without a content type'}, "
            f"not an RFC 6749 JSON error body: {response.text[:200]!r}"
        )
    try:
        body = json.loads(response.text)
    except ValueError as e:
        raise AssertionError(f"a {response.status_code} answer is not valid JSON ({e}): {response.text[:200]!r}")
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        raise AssertionError(f"a {response.status_code} answer has no string `error`: {response.text[:200]!r}")
    if "error_description" in body and not isinstance(body["error_description"], str):
        raise AssertionError(f"`error_description` is not a string: {response.text[:200]!r}")
    return None


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Caps the events pull's long-poll at one second, in every phase."""
    if case.operation.path == "/api/v1/events" and case.method.upper() == "GET" and case.query:
        wait = case.query.get("wait")
        if isinstance(wait, int) or (isinstance(wait, str) and wait.isdigit()):
            case.query["wait"] = min(int(wait), 1)
