"""Sending codes by SMS and e-mail: every S9 limit is checked before anything is sent."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import boto3
import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from idp_core.audit import recent
from idp_core.clock import FakeClock
from idp_core.config import ConfigurationError, MessagingConfig, Tables
from idp_core.errors import BadRequest
from idp_core.mfa import SendRefused
from idp_core.mfa.codes import TransactionExpired, key_for_session, verify_code
from idp_core.mfa.delivery import Senders, send_code
from idp_core.mfa.policy import MfaSettings, SmsLimits
from idp_core.models import Factor, RateCounter, Transaction, User
from idp_core.scope import Browser
from tests.helpers.mfa import emails_to, sms_to
from tests.helpers.scope import scope_at

SENDER = "no-reply@idp.example.com"
MESSAGING = MessagingConfig(email_sender=SENDER)
CODE_MESSAGE = re.compile(r"^(\d{6}) is your verification code for Acme\. It expires in 5 minutes\.$")


# Code hashes are keyed by the session's cookie value; these tests play one session.
CODE_KEY = key_for_session("the session's cookie value")
DEFAULT_LIMITS = SmsLimits()


class Spy:
    """A boto3 client that also remembers the keyword arguments of every call."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return call


def new_number() -> str:
    """A valid US number no other test uses: +1 201 555 01xx is not valid, 201-2xx-xxxx is."""
    return f"+1201{secrets.randbelow(800) + 200:03d}{secrets.randbelow(10_000):04d}"


@pytest.fixture
def aws(tables: Tables) -> tuple[Spy, Spy]:
    ses = boto3.client("ses", region_name="us-east-1")
    ses.verify_email_identity(EmailAddress=SENDER)
    return Spy(boto3.client("sns", region_name="us-east-1")), Spy(ses)


def make_factor(
    username: str, clock: FakeClock, *, phone: str | None = None, email: str | None = None
) -> Factor:
    if User.count(username) == 0:
        User(
            username=username, display_username=username, created_at=clock.now(), updated_at=clock.now()
        ).save()
    factor = Factor(
        username=username,
        factor_id=secrets.token_hex(8),
        kind="sms" if phone else "email",
        label="mine",
        status="active",
        created_at=clock.now(),
        phone=phone,
        email=email,
    )
    factor.save()
    return factor


def make_transaction(username: str, clock: FakeClock) -> Transaction:
    txn = Transaction(
        id_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        username=username,
        purpose="signin",
        created_at=clock.now(),
        expires_at=clock.now() + 900,
        sends=0,
    )
    txn.save()
    return txn


def send(
    txn: Transaction,
    factor: Factor,
    aws: tuple[Spy, Spy],
    clock: FakeClock,
    *,
    limits: SmsLimits = DEFAULT_LIMITS,
    source_ip: str = "198.51.100.7",
    messaging: MessagingConfig = MESSAGING,
) -> None:
    sns, ses = aws
    send_code(
        txn,
        factor,
        scope_at(clock, browser=Browser(source_ip), messaging=messaging),
        mfa_settings=MfaSettings(sms=limits),
        code_key=CODE_KEY,
        senders=Senders(sns=sns, ses=ses, issuer="Acme"),
    )


def refused_events(clock: FakeClock) -> list[dict[str, str]]:
    return [
        e.details.as_dict() if e.details else {} for e in recent(clock=clock) if e.type == "otp.send_refused"
    ]


def test_an_sms_code_goes_out_as_a_transactional_text_and_verifies(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    number = new_number()
    factor = make_factor("alice", clock, phone=number)
    txn = make_transaction("alice", clock)
    send(txn, factor, aws, clock)

    [text] = sms_to(number)
    match = CODE_MESSAGE.match(text)
    assert match, text
    [(operation, kwargs)] = aws[0].calls
    assert operation == "publish"
    assert kwargs["MessageAttributes"] == {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
    }
    verify_code(txn.id_hash, factor, match.group(1), key=CODE_KEY, clock=clock)
    [event] = [e for e in recent(clock=clock) if e.type == "otp.sent"]
    assert event.outcome == "success"
    assert event.details is not None and event.details["channel"] == "sms"
    assert event.details["to"] == f"+1********{number[-2:]}"
    assert match.group(1) not in str(event.attribute_values)


def test_the_configured_sender_id_and_origination_number_are_passed_to_sns(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    factor = make_factor("alice", clock, phone=new_number())
    messaging = MessagingConfig(sms_sender_id="AcmeIdP", sms_origination_number="+12065550100")
    send(make_transaction("alice", clock), factor, aws, clock, messaging=messaging)
    [(_, kwargs)] = aws[0].calls
    assert kwargs["MessageAttributes"]["AWS.SNS.SMS.SenderID"] == {
        "DataType": "String",
        "StringValue": "AcmeIdP",
    }
    assert kwargs["MessageAttributes"]["AWS.MM.SMS.OriginationNumber"] == {
        "DataType": "String",
        "StringValue": "+12065550100",
    }


def test_an_email_code_is_sent_from_the_configured_sender(aws: tuple[Spy, Spy], clock: FakeClock) -> None:
    address = f"alice-{secrets.token_hex(4)}@example.com"
    factor = make_factor("alice", clock, email=address)
    txn = make_transaction("alice", clock)
    send(txn, factor, aws, clock)

    [message] = emails_to(address)
    assert message.source == SENDER
    assert message.subject == "Your verification code for Acme"
    match = CODE_MESSAGE.match(message.body)
    assert match, message.body
    assert "http" not in message.body
    verify_code(txn.id_hash, factor, match.group(1), key=CODE_KEY, clock=clock)


def test_email_codes_need_a_configured_sender_and_nothing_is_sent_without_one(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    factor = make_factor("alice", clock, email="alice@example.com")
    with pytest.raises(ConfigurationError, match="EMAIL_SENDER"):
        send(make_transaction("alice", clock), factor, aws, clock, messaging=MessagingConfig())
    assert aws[1].calls == []


def assert_refused_and_nothing_sent(number: str, reason: str, message: str, **send_args: Any) -> None:
    clock = send_args["clock"]
    before = len(sms_to(number))
    counters_before = {c.key: c.hits for c in RateCounter.scan()}
    with pytest.raises(SendRefused) as refused:
        send(**send_args)
    assert refused.value.status == 429
    assert refused.value.message.startswith(message), refused.value.message
    assert len(sms_to(number)) == before
    assert {c.key: c.hits for c in RateCounter.scan()} == counters_before  # a refusal counts nothing
    assert refused_events(clock)[0]["reason"] == reason


def test_sends_beyond_the_per_user_limit_are_refused(aws: tuple[Spy, Spy], clock: FakeClock) -> None:
    number = new_number()
    factor = make_factor("alice", clock, phone=number)
    limits = SmsLimits(per_user_per_hour=2)
    for _ in range(2):
        send(make_transaction("alice", clock), factor, aws, clock, limits=limits)
    assert len(sms_to(number)) == 2
    assert_refused_and_nothing_sent(
        number,
        "per_user",
        "Too many codes were sent to your account: at most 2 an hour. Try again in 60 minutes.",
        txn=make_transaction("alice", clock),
        factor=factor,
        aws=aws,
        clock=clock,
        limits=limits,
    )


def test_sends_beyond_the_per_number_limit_are_refused_across_users(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    number = new_number()
    limits = SmsLimits(per_number_per_day=2)
    for username in ("alice", "bob"):
        factor = make_factor(username, clock, phone=number)
        send(make_transaction(username, clock), factor, aws, clock, limits=limits)
    carol = make_factor("carol", clock, phone=number)
    assert_refused_and_nothing_sent(
        number,
        "per_destination",
        "Too many codes were sent to this phone number: at most 2 a day.",
        txn=make_transaction("carol", clock),
        factor=carol,
        aws=aws,
        clock=clock,
        limits=limits,
    )


def test_sends_beyond_the_per_ip_limit_are_refused(aws: tuple[Spy, Spy], clock: FakeClock) -> None:
    limits = SmsLimits(per_ip_per_hour=2)
    for username in ("alice", "bob"):
        factor = make_factor(username, clock, phone=new_number())
        send(make_transaction(username, clock), factor, aws, clock, limits=limits, source_ip="203.0.113.9")
    number = new_number()
    carol = make_factor("carol", clock, phone=number)
    assert_refused_and_nothing_sent(
        number,
        "per_ip",
        "Too many codes were sent from your network: at most 2 an hour.",
        txn=make_transaction("carol", clock),
        factor=carol,
        aws=aws,
        clock=clock,
        limits=limits,
        source_ip="203.0.113.9",
    )
    # The refusal cost carol nothing: from another network her code goes out.
    send(make_transaction("carol", clock), carol, aws, clock, limits=limits, source_ip="203.0.113.10")
    assert len(sms_to(number)) == 1


def test_sends_beyond_the_daily_account_cap_are_refused(aws: tuple[Spy, Spy], clock: FakeClock) -> None:
    limits = SmsLimits(account_per_day=2)
    for index, username in enumerate(("alice", "bob")):
        factor = make_factor(username, clock, phone=new_number())
        send(
            make_transaction(username, clock), factor, aws, clock, limits=limits, source_ip=f"192.0.2.{index}"
        )
    number = new_number()
    carol = make_factor("carol", clock, phone=number)
    assert_refused_and_nothing_sent(
        number,
        "account_per_day",
        "Too many codes were sent by this service: at most 2 a day.",
        txn=make_transaction("carol", clock),
        factor=carol,
        aws=aws,
        clock=clock,
        limits=limits,
        source_ip="192.0.2.99",
    )
    clock.advance(24 * 3600)
    send(make_transaction("carol", clock), carol, aws, clock, limits=limits, source_ip="192.0.2.99")
    assert len(sms_to(number)) == 1


def test_resends_in_one_transaction_wait_longer_each_time(aws: tuple[Spy, Spy], clock: FakeClock) -> None:
    number = new_number()
    factor = make_factor("alice", clock, phone=number)
    txn = make_transaction("alice", clock)
    send(txn, factor, aws, clock)
    args = {"txn": txn, "factor": factor, "aws": aws, "clock": clock}
    clock.advance(10)
    assert_refused_and_nothing_sent(
        number,
        "resend_wait",
        "A code was sent a moment ago. You can ask for another in 20 seconds.",
        **args,
    )
    clock.advance(20)
    send(txn, factor, aws, clock)  # the first resend waits 30 s
    clock.advance(59)
    assert_refused_and_nothing_sent(
        number,
        "resend_wait",
        "A code was sent a moment ago. You can ask for another in 1 second.",
        **args,
    )
    clock.advance(1)
    send(txn, factor, aws, clock)  # the second waits 60 s
    clock.advance(119)
    with pytest.raises(SendRefused):
        send(txn, factor, aws, clock)  # the third waits 120 s
    assert len(sms_to(number)) == 3
    assert Transaction.get(txn.id_hash).sends == 3


def test_a_resend_from_a_stale_copy_of_the_transaction_is_refused(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    number = new_number()
    factor = make_factor("alice", clock, phone=number)
    txn = make_transaction("alice", clock)
    stale = Transaction.get(txn.id_hash)
    send(txn, factor, aws, clock)
    # A parallel request read the transaction before the first send: it must not skip the wait.
    with pytest.raises(SendRefused):
        send(stale, factor, aws, clock)
    assert len(sms_to(number)) == 1


def test_numbers_in_countries_outside_the_allowlist_get_nothing(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    number = "+442079460958"
    factor = make_factor("alice", clock, phone=number)
    assert_refused_and_nothing_sent(
        number,
        "country",
        "Text messages to numbers in GB are not allowed here; choose another method or ask an administrator.",
        txn=make_transaction("alice", clock),
        factor=factor,
        aws=aws,
        clock=clock,
        limits=SmsLimits(allowed_countries=("US",)),
    )
    assert aws[0].calls == []


def test_the_deployments_country_bound_holds_whatever_the_admin_allows(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    # The admin allows GB and US; the account owner deployed with smsAllowedCountries=US.
    number = "+442079460958"
    assert_refused_and_nothing_sent(
        number,
        "country",
        "Text messages to numbers in GB are not allowed here",
        txn=make_transaction("alice", clock),
        factor=make_factor("alice", clock, phone=number),
        aws=aws,
        clock=clock,
        limits=SmsLimits(allowed_countries=("GB", "US")),
        messaging=MessagingConfig(email_sender=SENDER, sms_countries=("US",)),
    )
    us_number = new_number()
    send(
        make_transaction("alice", clock),
        make_factor("alice", clock, phone=us_number),
        aws,
        clock,
        limits=SmsLimits(allowed_countries=("GB", "US")),
        messaging=MessagingConfig(email_sender=SENDER, sms_countries=("US",)),
    )
    assert len(sms_to(us_number)) == 1


def test_no_code_is_sent_for_an_expired_transaction_or_another_users_factor(
    aws: tuple[Spy, Spy], clock: FakeClock
) -> None:
    number = new_number()
    bobs = make_factor("bob", clock, phone=number)
    with pytest.raises(BadRequest):
        send(make_transaction("alice", clock), bobs, aws, clock)
    txn = make_transaction("bob", clock)
    clock.advance(901)
    with pytest.raises(TransactionExpired):
        send(txn, bobs, aws, clock)
    assert sms_to(number) == []


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (PhoneNumberType.PREMIUM_RATE, "a premium-rate number"),
        (PhoneNumberType.SHARED_COST, "a shared-cost number"),
        (PhoneNumberType.VOIP, "a VoIP number"),
        (PhoneNumberType.TOLL_FREE, "a toll-free number"),
        (PhoneNumberType.FIXED_LINE, "a landline number"),
    ],
)
def test_attack_a_stored_number_that_is_not_mobile_gets_no_code(
    aws: tuple[Spy, Spy], clock: FakeClock, kind: int, what: str
) -> None:
    # A factor stored before numbers were checked by type (or written around the check): the
    # send itself refuses, before any counter moves or SNS is asked.
    example = phonenumbers.example_number_for_type("FR", kind)
    assert example is not None and phonenumbers.number_type(example) == kind
    number = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    assert_refused_and_nothing_sent(
        number,
        "number_type",
        f"Text messages go only to mobile numbers, and the number of this method is {what}; "
        "choose another method or ask an administrator.",
        txn=make_transaction("alice", clock),
        factor=make_factor("alice", clock, phone=number),
        aws=aws,
        clock=clock,
        limits=SmsLimits(allowed_countries=("FR",)),
    )
    assert aws[0].calls == []


def test_a_mobile_number_still_gets_its_code(aws: tuple[Spy, Spy], clock: FakeClock) -> None:
    example = phonenumbers.example_number_for_type("FR", PhoneNumberType.MOBILE)
    assert example is not None
    number = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    before = len(sms_to(number))
    factor = make_factor("alice", clock, phone=number)
    send(make_transaction("alice", clock), factor, aws, clock, limits=SmsLimits(allowed_countries=("FR",)))
    assert len(sms_to(number)) == before + 1
