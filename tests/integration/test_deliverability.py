"""The emails as a mailbox provider receives them: real deliveries (Delivery, the SMTP channel
with a DKIM key, a real SMTP server) of each kind in English, German and Spanish, with and
without signed links, scored by SpamAssassin's local tests (`spamassassin -t -L`: no network
rules) and parsed by the standard library in its strict policy.

SpamAssassin is a Debian package (spamassassin): without it the scoring is skipped, saying so;
.ci/run installs it and requires it.
"""

from __future__ import annotations

import copy
import email.policy
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.channels.dkim import DkimSigner
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge_schemas import NudgeKind
from tests.support.notifier import delivery, due, plant
from tests.support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
# Each kind to its recipients: both for a date night (with a turn), one for the others.
KINDS: list[tuple[NudgeKind, list[str]]] = [
    ("date_night", ["maya", "sam"]),
    ("check_in", ["maya"]),
    ("appreciation", ["sam"]),
]
NOW = datetime(2026, 12, 11, 17, 0, tzinfo=UTC)
# Names that need RFC 2047 in the To header, per language.
NAMES = {"en": ("Maya", "Sam"), "de": ("Jürgen", "Zoë"), "es": ("José", "María")}
LINKS = {
    "public_url": "https://nudges.example.org",
    "unsubscribe_secrets": [SecretStr("k1:" + "s" * 32)],
    "manage_url": "https://app.example.org/settings/nudges",
    "support_url": "https://support.example.org/",
}


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


async def _deliver_all(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher, dkim_key: Path
) -> list[bytes]:
    """Every kind in every language, with and without signed links, as received."""
    base = json.loads((REPO / "examples/couples/maya-and-sam.json").read_text())["data"]
    for links in (True, False):
        settings = NotifierSettings(
            redis_url=SecretStr(redis_url),
            key_prefix=key_prefix,
            sender="Nudges <nudges@example.org>",
            dkim_key_file=dkim_key,
            dkim_selector="nudge2026",
            dkim_domain="example.org",
            **(LINKS if links else {}),  # type: ignore[arg-type]
        )
        channel = SmtpChannel(
            host="127.0.0.1", port=mail.port, dkim=DkimSigner.from_settings(settings)
        )
        deliverer = delivery(redis, settings, {"email": channel}, ManualClock(NOW))
        for locale, names in NAMES.items():
            data = copy.deepcopy(base)
            data["couple_id"] = f"c-{locale}-{int(links)}"
            for partner, name in zip(data["partners"], names, strict=True):
                partner["locale"], partner["name"] = locale, name
            sids = await plant(redis, settings, data, NOW)
            for n, (kind, recipients) in enumerate(KINDS):
                at = NOW + timedelta(minutes=n + 1)
                turn = "sam" if kind == "date_night" else None
                nudge = due(data["couple_id"], sids[n], kind, recipients, at, turn=turn)
                await deliverer.deliver(nudge)
        await channel.close()
    assert len(mail.received) == 2 * 3 * 4
    return list(mail.received)


@pytest.fixture
async def received(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher, dkim_key: Path
) -> list[bytes]:
    return await _deliver_all(redis, redis_url, key_prefix, mail, dkim_key)


def _mbox(messages: list[bytes]) -> bytes:
    """The messages as one mbox (LF line ends, "From " lines quoted): one SpamAssassin run."""
    return b"".join(
        b"From nudges@example.org Thu Jan  1 00:00:00 2026\n"
        + raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
        + b"\n"
        for raw in messages
    )


def _scores(spamassassin: str, messages: list[bytes]) -> Iterator[tuple[str, float, str]]:
    """(subject, score, rules) per message, from `spamassassin -t -L` over an mbox."""
    run = subprocess.run(
        [spamassassin, "-t", "-L", "--mbox"],
        input=_mbox(messages),
        capture_output=True,
        check=True,
        timeout=120,
    )
    statuses = re.findall(
        rb"^X-Spam-Status: \w+, score=(-?[\d.]+) required=[\d.]+ tests=((?:[\w,]|\n\s)*)",
        run.stdout,
        re.MULTILINE,
    )
    assert len(statuses) == len(messages)
    for raw, (score, rules) in zip(messages, statuses, strict=True):
        subject = str(BytesParser(policy=email.policy.default).parsebytes(raw)["Subject"])
        yield subject, float(score), re.sub(rb"\s", b"", rules).decode()


class TestSpamAssassin:
    async def test_no_rule_scores(self, received: list[bytes]) -> None:
        """No SpamAssassin rule adds to the score of any email (informational rules only:
        no Received header on a message that never crossed a relay)."""
        spamassassin = require_tool("spamassassin")
        scored = list(_scores(spamassassin, received))
        assert [s for s in scored if s[1] > 0] == []


class TestStrictParse:
    async def test_no_defects(self, received: list[bytes]) -> None:
        """Every email parses in the standard library's strict policy (a defect raises), each
        header line within RFC 5322's 998 characters, each MIME part UTF-8 text."""
        for raw in received:
            message = BytesParser(policy=email.policy.strict).parsebytes(raw)
            assert isinstance(message, EmailMessage)
            assert message.get_content_type() == "multipart/alternative"
            parts = [part.get_content_type() for part in message.iter_parts()]
            assert parts == ["text/plain", "text/html"]
            for part in message.iter_parts():
                assert part.get_content_charset() == "utf-8"
                assert isinstance(part, EmailMessage)
                assert part.get_content()
            head = raw.split(b"\r\n\r\n", 1)[0]
            assert max(map(len, head.split(b"\r\n"))) <= 998
