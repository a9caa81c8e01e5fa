"""Input rules of auth (auth.md §2, §7): emails, names, passwords, slugs, domains, URLs.

Each function returns the cleaned value or raises `InvalidArgument` naming the field.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from proliferate.auth.errors import invalid, not_found

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 256
NAME_MAX = 100


def normalize_email(email: str) -> str:
    return email.strip().lower()


def clean_email(email: str, field: str = "email") -> str:
    value = email.strip()
    if not value or len(value) > 320:
        raise invalid(field, "must be an email address")
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise invalid(field, f"is not a valid email address ({exc})") from None
    return value


def clean_name(name: str, field: str = "name") -> str:
    # Control characters are stripped (auth.md §7), then length is checked.
    value = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if not 1 <= len(value) <= NAME_MAX:
        raise invalid(field, f"must be 1 to {NAME_MAX} characters")
    return value


def check_password(password: str, field: str = "password") -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise invalid(field, f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return password


def clean_slug(slug: str, field: str = "slug") -> str:
    value = slug.strip().lower()
    if not 3 <= len(value) <= 48 or not SLUG_RE.match(value):
        raise invalid(field, "must be 3 to 48 lower-case letters, digits or inner dashes")
    return value


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")


def clean_domains(domains: list[str], field: str = "domains") -> list[str]:
    cleaned = sorted({d.strip().lower() for d in domains})
    if len(cleaned) > 20:
        raise invalid(field, "at most 20 domains")
    for domain in cleaned:
        if len(domain) > 253 or not DOMAIN_RE.match(domain):
            raise invalid(field, f"{domain!r} is not a domain name")
    return cleaned


def clean_https_url(url: str, field: str) -> str | None:
    value = url.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or len(value) > 2048:
        raise invalid(field, "must be an https URL")
    return value


def parse_id(value: str, what: str) -> uuid.UUID:
    """An id from a caller; a malformed one is simply not found (nothing to probe)."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise not_found(what) from None


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    shown = local[:1] if len(local) <= 2 else local[:2]
    return f"{shown}{'*' * max(len(local) - len(shown), 1)}@{domain}"
