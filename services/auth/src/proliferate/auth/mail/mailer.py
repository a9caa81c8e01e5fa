"""The `Mailer` seam and its implementations (auth.md §8).

- `RecordingMailer` (`MAILER=record`, the dev/test default): writes each mail to the
  `recorded_mails` table, where tests and developers read the links back.
- `SmtpMailer` (`MAILER=smtp`, aiosmtplib) and `ResendMailer` (`MAILER=resend`, httpx).
- `DisabledMailer` (`MAILER=disabled`): no email; invitation links are returned once to the
  admin who created them, verification cannot be required.

Sending is outside any transaction: the mailer consumer may send a mail twice when a delivery
is retried after a crash, never zero times.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import httpx
from proliferate.auth.mail.repository import RecordedMailRepository
from proliferate.kit.db import Database
from proliferate.kit.errors import Unavailable

SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Mail:
    to: str
    kind: str  # invitation | verification | password_reset
    subject: str
    body: str
    link: str


class Mailer(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def send(self, mail: Mail) -> None: ...


class RecordingMailer:
    enabled = True

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(self, mail: Mail) -> None:
        async with self.db.unit_of_work() as session:
            await RecordedMailRepository(session).insert(
                recipient=mail.to, kind=mail.kind, subject=mail.subject, body=mail.body, link=mail.link
            )


class DisabledMailer:
    enabled = False

    async def send(self, mail: Mail) -> None:  # pragma: no cover - never called when disabled
        raise Unavailable("email delivery is disabled", code="mail_disabled")


class SmtpMailer:
    enabled = True

    def __init__(
        self, *, host: str, port: int, sender: str, username: str | None, password: str | None, starttls: bool
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls

    async def send(self, mail: Mail) -> None:
        import aiosmtplib

        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
        message.set_content(mail.body)
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            timeout=SEND_TIMEOUT_S,
        )


class ResendMailer:
    enabled = True

    def __init__(self, *, api_key: str, sender: str, base_url: str = "https://api.resend.com") -> None:
        self.api_key, self.sender, self.base_url = api_key, sender, base_url.rstrip("/")

    async def send(self, mail: Mail) -> None:
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT_S) as client:
            response = await client.post(
                f"{self.base_url}/emails",
                headers={"Authorization": f"Bearer {self.api_key}"},
                json={"from": self.sender, "to": [mail.to], "subject": mail.subject, "text": mail.body},
            )
        if response.status_code >= 300:
            raise Unavailable(f"the mail provider answered {response.status_code}", code="mail_failed")
