"""Email headers are safe by construction (issue 20, item 5): a payload field with CR/LF in it renders into a one-line
subject, through the worker and SES (moto server), and a template whose subject holds one is refused at save.
And the pages an email links to (/u/, issue 20, item 8) answer with the headers a page holding a token needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel

from local.auth_service import AuthService
from local.events import http_api_event, kafka_record, msk_event
from local.invoke import LambdaContext

from .helpers import call_api, emails_to

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")
INJECTION = "Eve\r\nBcc: victim@example.com"


PAGE_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def _send(job_plan: EventPlan) -> None:
    from worker.app import kafka_processor, lambda_handler

    (job,) = job_plan.jobs()
    record = kafka_record("notification-jobs", 0, 0, job.model_dump_json().encode(), b"k")
    assert lambda_handler(msk_event([record], "127.0.0.1:9092"), LambdaContext("WorkerFunction", 120)) == {
        "batchItemFailures": []
    }
    assert kafka_processor.outcomes == {"sent": 1}


def _control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in text)


@pytest.fixture
def send_email_calls() -> Iterator[list[dict[str, Any]]]:
    """The parameters of every SES SendEmail this process makes (observed on the way out, not changed)."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    session = boto3._get_default_session()
    session.events.register("provide-client-params.sesv2.SendEmail", record, unique_id="send-email-calls")
    yield calls
    session.events.unregister("provide-client-params.sesv2.SendEmail", unique_id="send-email-calls")


def test_a_payload_with_cr_lf_sends_a_one_line_subject_and_no_bcc(
    auth_service: AuthService, moto_endpoint: str, send_email_calls: list[dict[str, Any]]
) -> None:
    user = f"headers-{uuid.uuid4().hex[:8]}"
    address = f"{user}@example.com"
    auth_service.add_user(user, segments=(), email=address, first_name="Ada")
    spec = EVENT_TYPES["review_liked"]
    payload = {**spec.sample_payload(), "liked_by": INJECTION}
    now = datetime.now(UTC)
    plan = EventPlan(new_event_id(), spec, payload, [user], [Channel.EMAIL], spec.priority, now, now + timedelta(1))
    _send(plan)
    (job,) = plan.jobs()

    (email,) = emails_to(moto_endpoint, address)
    assert email["subject"] == "Eve Bcc: victim@example.com liked your review of Arrival"
    assert email["destinations"].get("BccAddresses", []) == []
    assert emails_to(moto_endpoint, "victim@example.com") == []
    (params,) = [p for p in send_email_calls if p["Destination"]["ToAddresses"] == [address]]
    simple = params["Content"]["Simple"]
    headers = [params["FromEmailAddress"], simple["Subject"]["Data"], *(h["Value"] for h in simple.get("Headers", []))]
    assert not [h for h in headers if _control(h)], headers
    status, job_view = call_api("GET", f"/api/v1/notifications/{job.job_id}")
    assert status == 200 and job_view["status"] in ("SENT", "DELIVERED"), job_view


@pytest.mark.parametrize(
    "subject", ["{{ liked_by }}\r\nBcc: victim@example.com", "Liked\n", "Liked\tby {{ liked_by }}"]
)
def test_a_template_with_a_line_break_in_its_subject_is_refused_with_the_field(subject: str) -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    body = {"event_type": "review_liked", "channel": "email", "locale": locale, "subject": subject, "body_text": "x"}
    for method, path in (("POST", "/api/v1/templates"), ("POST", "/api/v1/templates:preview")):
        status, error = call_api(method, path, body)
        assert status == 422, (path, error)
        (field,) = error["error"]["fields"]
        assert (field["loc"], field["type"]) == ("subject", "header_control"), field
    assert call_api("GET", f"/api/v1/templates/review_liked.email.{locale}")[0] == 404
    tid = call_api("POST", "/api/v1/templates", {**body, "subject": "Liked"})[1]["template_id"]
    status, error = call_api("PUT", f"/api/v1/templates/{tid}", {"subject": subject})
    assert status == 422 and error["error"]["fields"][0]["loc"] == "subject", error


def test_the_unsubscribe_pages_cannot_be_framed_cached_or_leak_their_token(
    auth_service: AuthService, send_email_calls: list[dict[str, Any]]
) -> None:
    user = f"pages-{uuid.uuid4().hex[:8]}"
    address = f"{user}@example.com"
    auth_service.add_user(user, segments=(), email=address)
    spec = EVENT_TYPES["new_film"]
    now = datetime.now(UTC)
    _send(
        EventPlan(
            new_event_id(), spec, spec.sample_payload(), [user], [Channel.EMAIL], spec.priority, now, now + timedelta(1)
        )
    )
    (params,) = [p for p in send_email_calls if p["Destination"]["ToAddresses"] == [address]]
    (link,) = [h["Value"] for h in params["Content"]["Simple"]["Headers"] if h["Name"] == "List-Unsubscribe"]
    path = "/" + link.strip("<>").split("/", 3)[3]
    form = {"content-type": "application/x-www-form-urlencoded"}
    answers = {
        "the confirmation page": ("GET", path, None, {}),
        "a link that is not ours": ("GET", "/u/not-a-token", None, {}),
        "a POST without the one-click field": ("POST", path, b"List-Unsubscribe=Maybe", form),
        "the unsubscribed page": ("POST", path, b"List-Unsubscribe=One-Click", form),
    }
    from api.app import lambda_handler

    for what, (method, url, body, headers) in answers.items():
        result = lambda_handler(http_api_event(method, url, "", headers, body), LambdaContext("ApiFunction"))
        got = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        assert {k: got.get(k) for k in PAGE_HEADERS} == PAGE_HEADERS, (what, result["statusCode"], got)
        policy = dict(d.strip().split(" ", 1) for d in got["content-security-policy"].split(";") if d.strip())
        assert policy["frame-ancestors"] == "'none'", (what, policy)
        assert policy["default-src"] == "'none'" and policy["form-action"] == "'self'", (what, policy)
