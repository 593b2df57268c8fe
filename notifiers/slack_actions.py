"""Slack interactivity: prove a request came from Slack, then read which button was clicked.

Pure functions, no web framework. The web route reads the raw body and two headers, calls
:func:`verify_slack_signature` on the *raw bytes* (re-encoding a parsed form changes them and
breaks the HMAC), then :func:`parse_block_action`, and turns the result into an ``Ack``.

Everything in the payload is attacker-controlled until the signature checks out, and the fields
we keep (incident id, user name) stay untrusted text even after: a Slack user picks their own
name. So ids are validated against a strict pattern here, names are cleaned and bounded here,
and both are escaped wherever they are shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from notifiers.errors import NotifierError
from notifiers.text import console_safe

__all__ = [
    "ACTION_ACK",
    "ACTION_RESOLVE",
    "ACTION_STEP",
    "INCIDENT_ID",
    "SlackAction",
    "SlackPayloadError",
    "SlackSignatureError",
    "parse_block_action",
    "verify_slack_signature",
]

#: ``action_id`` of the buttons ``notifiers.slack.build_message`` renders.
ACTION_ACK = "escucha_ack"
ACTION_RESOLVE = "escucha_resolve"
#: A playbook step's "done" button; its value is ``"<incident id> <step id>"``.
ACTION_STEP = "escucha_step"
_ACTIONS: dict[str, Literal["ack", "resolve", "step"]] = {
    ACTION_ACK: "ack", ACTION_RESOLVE: "resolve", ACTION_STEP: "step"}
_STEP_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: '<watch id>.<hex hash>'. Always use ``fullmatch``: ``$`` would accept a trailing newline.
INCIDENT_ID = re.compile(r"[a-z0-9_-]{1,64}\.[0-9a-f]{8,32}")
# U… for users, W… for Enterprise Grid users; Slack ids are upper-case alphanumerics.
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() accepts '²'
# A block_actions payload carries the whole message (up to 50 blocks); 1 MiB is ample.
_MAX_BODY = 1 << 20
_MAX_NAME = 80  # Ack.by allows 256; a name longer than this is noise or an attack
# response_url is where the route may POST a reply: never let a payload point it elsewhere.
_RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


class SlackSignatureError(NotifierError):
    """The request cannot be shown to come from Slack; answer 401 and do nothing else.

    The message never contains the signing secret or the signature we expected (a valid
    signature for the attacker's own body would let them replay it)."""


class SlackPayloadError(NotifierError, ValueError):
    """A signed request whose body is not a block_actions payload we can read (answer 400)."""


@dataclass(frozen=True)
class SlackAction:
    """One click on an escucha button, validated: safe to turn into an ``Ack``."""

    incident_id: str
    action: Literal["ack", "resolve", "step"]
    user_id: str
    user_name: str  # cleaned, one line, at most 80 characters; still escape it for display
    response_url: str | None  # an https URL on a Slack hooks host, or None
    step: str | None = None  # for "step": the playbook step id


def verify_slack_signature(
    *,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signing_secret: str,
    now: float | None = None,
    tolerance_s: int = 300,
) -> None:
    """Raise :class:`SlackSignatureError` unless Slack signed ``body`` (v0 scheme).

    ``timestamp`` and ``signature`` are the ``X-Slack-Request-Timestamp`` and
    ``X-Slack-Signature`` headers. The timestamp must be within ``tolerance_s`` of ``now``
    either way, so a captured request cannot be replayed later.
    """
    if not signing_secret:
        raise SlackSignatureError(
            "no Slack signing secret is configured: copy it from the Slack app's "
            "'Basic Information' page into escucha's settings")
    if not timestamp or not signature:
        raise SlackSignatureError(
            "missing X-Slack-Request-Timestamp or X-Slack-Signature header: "
            "not a request from Slack")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SlackSignatureError("X-Slack-Request-Timestamp is not a Unix time in seconds")
    skew = (time.time() if now is None else now) - int(timestamp)
    if abs(skew) > tolerance_s:
        raise SlackSignatureError(
            f"request timestamp is {skew:+.0f} s from this host's clock (allowed: "
            f"±{tolerance_s} s): a replayed request, or a host clock that needs NTP")
    if not signature.startswith("v0="):
        raise SlackSignatureError("X-Slack-Signature is not a v0 signature")
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    # Constant time, on bytes: compare_digest refuses non-ASCII str, and headers can hold any.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise SlackSignatureError(
            "X-Slack-Signature does not match: wrong signing secret, or the body was altered "
            "(verify the raw request bytes, before any parsing)")


def parse_block_action(body: bytes) -> SlackAction | None:
    """The escucha button click in a Slack interactivity request body, or None.

    ``body`` is what Slack POSTs as ``application/x-www-form-urlencoded``: one field,
    ``payload``, holding JSON. None for other interaction types (shortcuts, modals) and for
    clicks on elements that are not ours; :class:`SlackPayloadError` (a ``ValueError``) when
    the body or the fields we need are malformed.
    """
    data = _payload(body)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise SlackPayloadError("interaction payload has no 'type'")
    if kind != "block_actions":
        return None
    actions = data.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise SlackPayloadError("block_actions payload has no list of 'actions'")
    # A button click carries exactly one action; take the first of ours if there are more.
    # Action ids are unique per block, so step buttons are "escucha_step.<n>".
    ours = next((a for a in actions if _kind(a.get("action_id")) in _ACTIONS), None)
    if ours is None:
        return None
    incident_id = ours.get("value")
    step = None
    if _kind(ours.get("action_id")) == ACTION_STEP and isinstance(incident_id, str):
        incident_id, _, step = incident_id.partition(" ")
        if not _STEP_ID.fullmatch(step):
            raise SlackPayloadError(f"step button value has no step id: {_shown(step)}")
    if not isinstance(incident_id, str) or not INCIDENT_ID.fullmatch(incident_id):
        raise SlackPayloadError(
            f"action value is not an incident id ('<watch>.<hex>'): {_shown(incident_id)}")
    user_id, user_name = _user(data.get("user"))
    return SlackAction(
        incident_id=incident_id,
        action=_ACTIONS[_kind(ours["action_id"])],
        user_id=user_id,
        user_name=user_name,
        response_url=_response_url(data.get("response_url")),
        step=step,
    )


def _kind(action_id: Any) -> str:
    return action_id.split(".", 1)[0] if isinstance(action_id, str) else ""


def _payload(body: bytes) -> dict[str, Any]:
    if len(body) > _MAX_BODY:
        raise SlackPayloadError(f"interaction body is over {_MAX_BODY} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          max_num_fields=16, errors="strict")
    except ValueError as exc:  # UnicodeDecodeError included
        raise SlackPayloadError(
            f"interaction body is not form-encoded ({exc}); Slack posts "
            "application/x-www-form-urlencoded 'payload=<JSON>'") from exc
    payloads = fields.get("payload", [])
    if len(payloads) != 1:
        raise SlackPayloadError(
            "interaction body needs exactly one 'payload' field (payload=<urlencoded JSON>)")
    try:
        data = json.loads(payloads[0])
    except (ValueError, RecursionError) as exc:
        raise SlackPayloadError(f"interaction payload is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SlackPayloadError("interaction payload is not a JSON object")
    return data


def _user(user: Any) -> tuple[str, str]:
    if not isinstance(user, dict):
        raise SlackPayloadError("block_actions payload has no 'user' object")
    user_id = user.get("id")
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise SlackPayloadError(f"payload user.id is not a Slack user id: {_shown(user_id)}")
    raw = user.get("username") or user.get("name")
    name = console_safe(raw, limit=_MAX_NAME).strip() if isinstance(raw, str) else ""
    # The id is always there and always safe: better than an empty or missing name.
    return user_id, name or user_id


def _response_url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme != "https" or parts.hostname not in _RESPONSE_HOSTS or port is not None:
        return None
    if parts.username or parts.password or any(c in value for c in " \r\n\t\\"):
        return None
    return value


def _shown(value: Any) -> str:
    # Attacker-chosen text in an error message that may reach a log: repr, one line, short.
    return console_safe(repr(value), limit=80)
