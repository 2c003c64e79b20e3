"""Numbers that pass a validator but are not personal data, kind by kind; and real PII next to them still found."""

from __future__ import annotations

import pytest

from semrouter.signals.pii import context as ctx
from semrouter.signals.pii.patterns import detect_patterns
from semrouter.signals.pii.validators import credit_card_ok, iban_ok, luhn_ok, ssn_ok


def found(text: str) -> list[tuple[str, str]]:
    return [(e.type, e.value) for e in detect_patterns(text)]


NOT_PII = {
    "four-part version": [
        "We deployed build 2.4.1.0 to staging yesterday.",
        "Our app 3.1.4.1 crashes on start.",
        "Firmware 1.0.2.15 fixed the boot loop.",
        "Both 4.0.0.12 and 11.2.0.4 are supported releases.",
    ],
    "spec section": [
        "See section 4.3.2.1 of the spec for the grammar.",
        "As required by § 2.1.3.4 and clause 12.4.1.1, the header is optional.",
        "Paragraph 3.2.1.7 overrides table 1.1.2.3 here.",
    ],
    "coordinates": [
        "The summit is at 40.7128, -74.0060 and the base at 40.7306 -73.9352.",
        "Coordinates: 48.858370, 2.294481 (the tower).",
        "lat 51.507351 lon -0.127758",
        "Waypoint 35.6762° N, 139.6503° E",
    ],
    "lottery draw": [
        "This week's lottery numbers were 05 12 23 34 45 and 06.",
        "Powerball draw: 12-23-34-45-56, bonus 7.",
        "Winning numbers 07 14 21 28 35 42",
    ],
    "arithmetic with dashes": [
        "What is 100-20-5?",
        "Compute 555-123-4567 and tell me the result.",
        "1000-250-75 = 675",
        "Is 512-64-1024 negative?",
        "2048-512-1024-256 = 256",
    ],
    "well-known test card": [
        "Use the test card 4242 4242 4242 4242 with any CVC.",
        "My card is 4111 1111 1111 1111, what's my balance?",
        "Stripe test card 4000 0566 5566 5556 for debit.",
        "Try 5555 5555 5555 4444 in the sandbox, or Amex 3782 822463 10005.",
    ],
    "placeholder digits": [
        "Send it to +1234567890 as a placeholder.",
        "Call 000-000-0000 if needed.",
        "SSN format is 123-45-6789.",
    ],
    "shell and code": [
        "curl -s http://127.0.0.1:8080/health && dig @1.1.1.1 example.com",
        "ssh admin@192.168.1.20 -p 2222",
        "nmap -sV 10.0.0.0/24 && ping -c 3 8.8.8.8",
        "docker run -p 5432:5432 postgres:16.2 && sha256sum file # 9f86d081884c7d65",
        "git checkout 3f2a9c1 && pip install numpy==1.26.4 && nc -l 0.0.0.0 4444",
        "traceroute 2001:db8::1 and ping6 fe80::1%eth0",
        "printf '%o' 0377 100000",
    ],
    "documentation e-mail": [
        "mail me at user@example.com about the test",
        "git config user.email dev@build.test",
    ],
}


@pytest.mark.parametrize(
    "text", [pytest.param(t, id=f"{kind}:{i}") for kind, ts in NOT_PII.items() for i, t in enumerate(ts)]
)
def test_lookalike_kinds_are_not_pii(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # real values right next to the words that make look-alikes harmless
        ("Release notes aside, my phone is 415-867-2291.", [("PHONE_NUMBER", "415-867-2291")]),
        ("The draw is on Friday; call me on 07911 123456.", [("PHONE_NUMBER", "07911 123456")]),
        ("Charge card 4539 0721 8836 4013 for the lottery ticket.", [("CREDIT_CARD", "4539 0721 8836 4013")]),
        ("Server 84.17.45.200 at version 2 of our network refuses logins.", [("IP_ADDRESS", "84.17.45.200")]),
        ("My SSN is 536-22-1847, not a section number.", [("US_SSN", "536-22-1847")]),
        ("write to ana.lopez@mailbox.org", [("EMAIL_ADDRESS", "ana.lopez@mailbox.org")]),
    ],
)
def test_real_pii_beside_lookalike_words(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Hi, it's Marta. You can reach me at 0699 868 88 55 after work.", "0699 868 88 55"),
        ("If the parcel is late please call me on (81) 3570-7492 tomorrow.", "(81) 3570-7492"),
        ("My mobile is 9469 9966, text before calling.", "9469 9966"),
        ("Office hours 9-5; fax 001-668-040-8670x1711 for orders.", "001-668-040-8670x1711"),
        ("Flat 4, 12 Kings Road, 72705 046 406 6044 office", "72705 046 406 6044"),
        ("Ring me: +46 (0)8 928 571 38.", "+46 (0)8 928 571 38"),
        ("I'm at 2546712361 (mobile) all day.", "2546712361"),
        # a German area code in brackets or apart, then a five-digit subscriber number
        ("Bitte ruf mich unter (07351) 48206 an, danke.", "(07351) 48206"),
        ("Sven is on 07351 48206 after six.", "07351 48206"),
        # bare digits with the phone word after them
        ("Is 0472918365 still the best number for your sister?", "0472918365"),
    ],
)
def test_phone_numbers_in_running_text_are_found(text: str, value: str) -> None:
    assert ("PHONE_NUMBER", value) in found(text)


def test_card_word_accepts_luhn_valid_numbers_without_known_prefix() -> None:
    assert found("what is the limit for card 584528792610?") == [("CREDIT_CARD", "584528792610")]
    assert found("what is the limit for card 584528792611?") == []  # Luhn fails
    assert found("the id 584528792610 is in the table") == []  # no card word, unknown prefix


def test_validators() -> None:
    assert luhn_ok("4539072188364013") and not luhn_ok("4539072188364014")
    assert credit_card_ok("4539072188364013") and not credit_card_ok("1234567890123452")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    assert ssn_ok("536", "22", "1847")
    assert not ssn_ok("000", "22", "1847") and not ssn_ok("666", "22", "1847") and not ssn_ok("912", "22", "1847")
    assert not ssn_ok("536", "00", "1847") and not ssn_ok("536", "22", "0000")
    assert ctx.test_card("4242424242424242") and not ctx.test_card("4539072188364013")
    assert not ctx.personal_ip("192.168.1.1") and not ctx.personal_ip("2001:db8::1") and not ctx.personal_ip("8.8.8.8")
    assert ctx.personal_ip("84.17.45.200") and ctx.personal_ip("2a02:1205::1")
