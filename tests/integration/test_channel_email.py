"""The SMTP channel against a real aiosmtpd server: STARTTLS or implicit TLS, AUTH, reuse.

The server's certificate is a throwaway one made for the test; the channel trusts exactly it.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.email import SmtpChannel, wire_bytes
from couples_nudge.notifier.errors import PermanentSendError
from couples_nudge.notifier.render import NudgeView, render_email
from tests.support.tls import Certificate, self_signed

# aiosmtpd itself sets the deprecated Session.login_data after every successful AUTH.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Session.login_data is deprecated:DeprecationWarning"
)

USER, PASSWORD = "nudges", "s3cret-for-tests"
# As long as real links get: a 64-character couple id and partner id in the token.
UNSUBSCRIBE = "https://nudges.example.org/unsubscribe/k1." + "x" * 190 + "." + "y" * 43


class Authenticator:
    """Accepts USER/PASSWORD and counts AUTH exchanges (one per SMTP connection)."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.attempts += 1
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 235/535


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path)


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator()


@pytest.fixture
def starttls_mail(certificate: Certificate, auth: Authenticator) -> Iterator[MailCatcher]:
    with MailCatcher(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=auth,
    ) as catcher:
        yield catcher


def message(n: int = 0, to: str = "maya@example.test") -> Outgoing:
    item = load_catalog().items("check_in")[n]
    view = NudgeView(
        kind="check_in", item=item, recipient="Maya", partner="Sam", unsubscribe_url=UNSUBSCRIBE
    )
    rendered = render_email(
        view,
        sender="Nudges <nudges@example.org>",
        to=f"Maya <{to}>",
        when=datetime(2026, 12, 6, 19, 0, tzinfo=UTC),
        list_unsubscribe_post=True,
    )
    return Outgoing("email", f"occ-{n}|maya|email", email=rendered, address=to)


def channel(port: int, certificate: Certificate, **overrides: Any) -> SmtpChannel:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": USER,
        "password": SecretStr(PASSWORD),
        "timeout": 10.0,
        "tls_context": certificate.client_context(),
    }
    return SmtpChannel(**(options | overrides))


class TestStartTls:
    async def test_delivers_after_starttls_and_auth(
        self, starttls_mail: MailCatcher, certificate: Certificate, auth: Authenticator
    ) -> None:
        """A server that demands STARTTLS and AUTH receives the nudge for the right recipient."""
        smtp = channel(starttls_mail.port, certificate)
        try:
            await smtp.send(message())
        finally:
            await smtp.close()
        assert starttls_mail.recipients == [["maya@example.test"]]
        assert starttls_mail.messages[0]["Subject"] == load_catalog().items("check_in")[0].title
        assert auth.attempts == 1

    async def test_connection_is_reused(
        self, starttls_mail: MailCatcher, certificate: Certificate, auth: Authenticator
    ) -> None:
        """Consecutive sends share one connection: one TLS handshake and one AUTH for three."""
        smtp = channel(starttls_mail.port, certificate, concurrency=1)
        try:
            for n in range(3):
                await smtp.send(message(n))
        finally:
            await smtp.close()
        assert len(starttls_mail.messages) == 3
        assert auth.attempts == 1

    async def test_wrong_password_is_permanent(
        self, starttls_mail: MailCatcher, certificate: Certificate
    ) -> None:
        """A refused login (535) is a permanent error that does not mark the address dead."""
        smtp = channel(starttls_mail.port, certificate, password=SecretStr("wrong"))
        try:
            with pytest.raises(PermanentSendError) as info:
                await smtp.send(message())
        finally:
            await smtp.close()
        assert info.value.gone is False
        assert PASSWORD not in str(info.value)
        assert starttls_mail.messages == []


class TestImplicitTls:
    # aiosmtpd warns about AUTH without STARTTLS; on an implicit-TLS port that does not apply.
    @pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
    async def test_delivers_over_tls(self, certificate: Certificate, auth: Authenticator) -> None:
        """With security "tls" the channel speaks TLS from the first byte (SMTPS)."""
        with MailCatcher(
            ssl_context=certificate.server_context(),
            authenticator=auth,
            auth_required=True,
            auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS; this is SMTPS
        ) as mail:
            smtp = channel(mail.port, certificate, security="tls")
            try:
                await smtp.send(message())
            finally:
                await smtp.close()
            assert mail.recipients == [["maya@example.test"]]
        assert auth.attempts == 1


class TestOnTheWire:
    async def test_list_unsubscribe_arrives_as_one_plain_url(
        self, starttls_mail: MailCatcher, certificate: Certificate
    ) -> None:
        """A 250-character List-Unsubscribe URL reaches the server unencoded, as RFC 8058 needs."""
        smtp = channel(starttls_mail.port, certificate)
        try:
            await smtp.send(message())
        finally:
            await smtp.close()
        received = starttls_mail.messages[0]
        assert received["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = received.get_body(("html",))
        assert html is not None
        assert f'href="{UNSUBSCRIBE}"' in html.get_content()

    def test_wire_bytes_keep_header_lines_plain(self) -> None:
        """Flattened for SMTP, the header is one line with no RFC 2047 encoded words, CRLF ends."""
        raw = wire_bytes(_email(message()))
        line = next(x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:"))
        assert line == f"List-Unsubscribe: <{UNSUBSCRIBE}>".encode()
        assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0]
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"

    async def test_non_ascii_address_uses_smtputf8(self, certificate: Certificate) -> None:
        """An internationalised address is sent with SMTPUTF8 and arrives as written."""
        with MailCatcher(enable_SMTPUTF8=True) as mail:
            smtp = channel(mail.port, certificate, security="none", username=None, password=None)
            try:
                await smtp.send(message(to="zoë@example.test"))
            finally:
                await smtp.close()
            assert mail.recipients == [["zoë@example.test"]]


def _email(outgoing: Outgoing) -> EmailMessage:
    assert outgoing.email is not None
    return outgoing.email
