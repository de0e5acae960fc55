"""schemathesis hooks for .ci/run.

An `Idempotency-Key` names one request: the server answers a reuse with another body 422
`idempotency_key_reused`, as the spec says. Generated keys repeat ("0", "00", ...), so a
schema-valid key is replaced by a fresh one; invalid keys are left alone so the server's
refusal of them is still tested.
"""

import re
import uuid

import schemathesis

_VALID_KEY = re.compile(r"[ -~]{1,255}")


@schemathesis.hook
def before_call(context, case, kwargs):
    """Runs before every request, whatever the phase that made it."""
    for headers in (case.headers, kwargs.get("headers")):
        if not headers:
            continue
        key = headers.get("Idempotency-Key")
        if isinstance(key, str) and _VALID_KEY.fullmatch(key):
            headers["Idempotency-Key"] = str(uuid.uuid4())
