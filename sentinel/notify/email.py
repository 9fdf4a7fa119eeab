"""Email over SMTP: STARTTLS, implicit TLS or plain (a local relay); a text part and an HTML part.

SMTP is not HTTP, so email does not pass through the egress guard (``sentinel.egress``): the one
host it connects to is the ``host`` of its receiver's config, and nothing in an alert can change it.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from sentinel import logs
from sentinel.config import EmailReceiver
from sentinel.egress import redact
from sentinel.notify import render
from sentinel.notify.model import DeliveryResult, Notification, Outcome


def smtp_result(code: int, message: bytes | str, secrets: tuple[str, ...] = ()) -> DeliveryResult:
    """An SMTP reply as a delivery outcome: 2xx delivered, 4xx try again later (greylisting, a full
    queue, a busy server), 5xx will not work as configured (535 bad credentials, 550 no mailbox)."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    detail = redact(f"SMTP {code} {' '.join(text.split())}".strip(), secrets)[:200]
    if 200 <= code < 300:
        return DeliveryResult(Outcome.OK, detail, code)
    if 400 <= code < 500:
        return DeliveryResult(Outcome.RETRYABLE, detail, code)
    return DeliveryResult(Outcome.PERMANENT, detail, code)


class EmailNotifier:
    """Sends a notification as one email to every ``to`` address. ``send`` never raises."""

    def __init__(self, settings: EmailReceiver, environ: Mapping[str, str] | None = None) -> None:
        self.name = settings.name
        self._settings = settings
        password = settings.password(None if environ is None else dict(environ))
        self._password = password.get_secret_value() if password is not None else None
        if self._password:
            logs.register_secret(self._password)
        self._secrets = (self._password,) if self._password else ()

    def message(self, n: Notification) -> EmailMessage:
        """The email: subject from the title, a plain-text body with an HTML alternative."""
        s = self._settings
        msg = EmailMessage()
        msg["Subject"] = render.title(n)
        msg["From"] = s.from_addr
        msg["To"] = ", ".join(s.to)
        created = n.created_at if n.created_at.tzinfo else n.created_at.replace(tzinfo=UTC)
        msg["Date"] = format_datetime(created.astimezone(UTC))
        msg["Message-ID"] = _message_id(n, s.from_addr)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
        msg["X-Sentinel-Receiver"] = n.receiver
        msg.set_content(render.text(n))
        msg.add_alternative(render.html(n), subtype="html")
        return msg

    def _context(self) -> ssl.SSLContext:
        cafile = str(self._settings.ca_bundle) if self._settings.ca_bundle else None
        return ssl.create_default_context(cafile=cafile)

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._context())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=self._context())
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, notification: Notification) -> DeliveryResult:
        try:
            msg = self.message(notification)
        except Exception as exc:  # a receiver never raises: every failure is a result
            return DeliveryResult(Outcome.RETRYABLE, self._clean(f"unexpected {type(exc).__name__}: {exc}"))
        return self.send_message(msg)

    def send_message(self, msg: EmailMessage) -> DeliveryResult:
        """Send a prepared message (its own To, Cc and Bcc are the recipients) with this receiver's
        SMTP settings and login, and classify the outcome. Never raises."""
        try:
            with self._connect() as smtp:
                if self._settings.username and self._password is not None:
                    smtp.login(self._settings.username, self._password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused: the worst code decides
            codes = [code for code, _ in exc.recipients.values()]
            worst = max(codes, default=550)
            return DeliveryResult(
                Outcome.RETRYABLE if all(400 <= c < 500 for c in codes) else Outcome.PERMANENT,
                f"SMTP {worst}: every recipient refused",
                worst,
            )
        except smtplib.SMTPResponseException as exc:  # auth failed, sender refused, data refused, ...
            return smtp_result(exc.smtp_code, exc.smtp_error, self._secrets)
        except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS or AUTH not offered by the server
            return DeliveryResult(Outcome.PERMANENT, self._clean(f"not supported by the server: {exc}"))
        except ssl.SSLCertVerificationError as exc:  # the wrong server, or ca_bundle missing: config
            return DeliveryResult(Outcome.PERMANENT, self._clean(f"TLS certificate not trusted: {exc.verify_message}"))
        except TimeoutError:
            return DeliveryResult(Outcome.RETRYABLE, "timeout")
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, DNS, TLS handshake: try later
            return DeliveryResult(Outcome.RETRYABLE, self._clean(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # a receiver never raises: every failure is a result
            return DeliveryResult(Outcome.RETRYABLE, self._clean(f"unexpected {type(exc).__name__}: {exc}"))
        if refused:  # some recipients took it: resending would duplicate it for them
            recipients = getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []) + msg.get_all("Bcc", []))
            return DeliveryResult(Outcome.OK, f"delivered; {len(refused)} of {len(recipients)} recipients refused")
        return DeliveryResult(Outcome.OK, "SMTP 250 accepted", 250)

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)[:300]


def _message_id(n: Notification, from_addr: str) -> str:
    """The same notification gets the same Message-ID on every attempt, so a retry after a lost
    answer shows up as one message in mail clients that thread by it."""
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "sentinel.invalid"
    parts = [n.receiver, n.group_key, n.created_at.isoformat(), *(f"{a.fingerprint}/{a.status}" for a in n.alerts)]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"
