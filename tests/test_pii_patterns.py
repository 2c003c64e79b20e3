"""Structured PII patterns: validated matches with exact spans, look-alikes rejected."""

from __future__ import annotations

import pytest

from semrouter.signals.pii.patterns import detect_patterns
from semrouter.signals.pii.validators import credit_card_ok, iban_ok, luhn_ok


def found(text: str) -> list[tuple[str, str]]:
    return [(e.type, e.value) for e in detect_patterns(text)]


def spans_ok(text: str) -> None:
    for e in detect_patterns(text):
        assert text[e.start : e.end] == e.value


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("Mail john.smith+work@example.co.uk today.", "EMAIL_ADDRESS", "john.smith+work@example.co.uk"),
        ("Call me at (555) 123-4567 tomorrow.", "PHONE_NUMBER", "(555) 123-4567"),
        ("My number is 555-123-4567.", "PHONE_NUMBER", "555-123-4567"),
        ("Ring +44 20 7946 0958 after six.", "PHONE_NUMBER", "+44 20 7946 0958"),
        ("Mobile: 07700 900123", "PHONE_NUMBER", "07700 900123"),
        ("Appelle le 06 12 34 56 78 stp", "PHONE_NUMBER", "06 12 34 56 78"),
        ("Office +1-415-555-2671 ext. 204, thanks", "PHONE_NUMBER", "+1-415-555-2671 ext. 204"),
        ("call me on 4155552671", "PHONE_NUMBER", "4155552671"),
        ("My SSN is 536-22-1847.", "US_SSN", "536-22-1847"),
        ("social security number 078051121", "US_SSN", "078051121"),
        ("Visa 4529 3810 4477 2109 exp 12/27", "CREDIT_CARD", "4529 3810 4477 2109"),
        ("card 5491-2760-3318-8427 please", "CREDIT_CARD", "5491-2760-3318-8427"),
        ("Amex 3794 620158 39017.", "CREDIT_CARD", "3794 620158 39017"),
        ("card: 4539072188364013", "CREDIT_CARD", "4539072188364013"),
        ("Server 84.17.45.200:8080 is down", "IP_ADDRESS", "84.17.45.200"),
        ("ping 93.41.7.122.", "IP_ADDRESS", "93.41.7.122"),
        ("from 2a02:1205:c6a3::ff00:42:8329 we saw", "IP_ADDRESS", "2a02:1205:c6a3::ff00:42:8329"),
        ("zoned 2a02:1205::1ff:fe23:4567:890a%eth0 here", "IP_ADDRESS", "2a02:1205::1ff:fe23:4567:890a%eth0"),
        ("full 2a02:0db8:85a3:0000:0000:8a2e:0370:7334 ok", "IP_ADDRESS", "2a02:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
        ("pay GB82WEST12345698765432.", "IBAN_CODE", "GB82WEST12345698765432"),
        ("FR14 2004 1010 0505 0001 3M02 606 is mine", "IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606"),
        ("I was born on March 3rd, 1985 in Ohio.", "DATE_OF_BIRTH", "March 3rd, 1985"),
        ("DOB: 1990-05-12", "DATE_OF_BIRTH", "1990-05-12"),
        ("date of birth 12.05.1990, Berlin", "DATE_OF_BIRTH", "12.05.1990"),
        ("12/05/1990 is my birthday", "DATE_OF_BIRTH", "12/05/1990"),
        ("Geburtsdatum 3 May 1970", "DATE_OF_BIRTH", "3 May 1970"),
        # day-month-year with a month name joined by dashes, and a two-digit year after a month name
        ("Her date of birth: 21-Sep-1979, please update the form", "DATE_OF_BIRTH", "21-Sep-1979"),
        ("DOB - 7 Feb 83", "DATE_OF_BIRTH", "7 Feb 83"),
        # a zero-padded (fixed-width) dotted quad, as some access logs print it
        ("My home IP is 081.002.069.160, is it blocked?", "IP_ADDRESS", "081.002.069.160"),
    ],
)
def test_structured_type_found_with_span(text: str, type_: str, value: str) -> None:
    got = detect_patterns(text)
    assert [(e.type, e.value) for e in got] == [(type_, value)]
    e = got[0]
    assert text[e.start : e.end] == value
    assert e.start == text.index(value)


def test_several_types_in_one_text() -> None:
    text = "Hi, reach me at ana@mailbox.org or +1 (212) 555-0147; SSN 536-22-1847, card 4539072188364013."
    assert found(text) == [
        ("EMAIL_ADDRESS", "ana@mailbox.org"),
        ("PHONE_NUMBER", "+1 (212) 555-0147"),
        ("US_SSN", "536-22-1847"),
        ("CREDIT_CARD", "4539072188364013"),
    ]
    spans_ok(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4529 3810 4477 2108 declined",  # Luhn fails
        "card 1234 5678 9012 3456",  # unknown issuer prefix (and Luhn)
        "IBAN DE89 3704 0044 0532 0130 01",  # mod-97 fails
        "IBAN DE89 3704 0044 0532 0130",  # wrong length for DE
        "IBAN XX89 3704 0044 0532 0130 00",  # unknown country
        "server 256.1.1.1 is down",  # octet out of range
        "server 10.0.0.01 is down",  # leading zero
        "ip 2001:db8:::1 bad",  # invalid IPv6
        "SSN 000-12-3456",  # area 000
        "SSN 666-12-3456",  # area 666
        "SSN 123-00-4567",  # group 00
        "my email is john@localhost",  # no TLD
        "the date 1990-05-12 is a Saturday",  # date without birth context
    ],
)
def test_invalid_values_rejected(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Where is my order #123-456-7890?",
        "Order number 4539072188364013 was cancelled.",
        "order id 303-7486257-0292961 shipped",
        "ISBN 978-3-16-148410-0 is out of print",
        "ISBN 9783161484100 and 0-306-40615-2 are the same book",
        "Upgrade pydantic to version 2.14.3 please",
        "We run version 1.2.3.4 in production",
        "pin numpy==1.26.4.1 and v10.0.0.1",
        "Spotify released Ubuntu 1.2.3.4 on Saturday.",
        "Product code 555-123-4567 is out of stock.",
        "SKU 555-12-3456 ships tomorrow.",
        "Part number 4529 3810 4477 2109 fits the pump.",
        "UPS tracking 1Z999AA10123456784 says delivered",
        "USPS tracking 9400 1000 0000 0000 0000 00 is stuck",
        "FedEx tracking 123456789012 arrives Monday",
        "The job ran at 2024-01-15T10:30:00Z and took 14 s",
        "Log line: 2024-01-15 10:30:00 ERROR timeout",
        "at 10:30:00 we saw MAC 00:1A:2B:3C:4D:5E and std::vector",
        "Invoice 3970523279 totals 282.01 EUR.",
        "The EAN barcode 6073428096416 is printed on the box.",
        "Python 3.11.4 and numpy 2.1.3 disagree.",
        "I called 3 times.",
        # a date without a birth word is not a date of birth; zero-padded small quads are versions
        "The conference runs 21-Sep-2027 to 23-Sep-2027 in the main hall.",
        "Firmware 01.02.03.04 fixes the fan curve.",
        # digits followed by "number" that is not a contact number
        "Is 2147483647 the largest number a signed 32-bit int holds?",
        "Is 31415926 a random number or a pattern?",
    ],
)
def test_lookalikes_not_reported(text: str) -> None:
    assert found(text) == []


def test_birth_context_does_not_leak_to_other_dates() -> None:
    text = "12/05/1990 is my birthday; the appointment is 03/04/2024"
    assert found(text) == [("DATE_OF_BIRTH", "12/05/1990")]
    assert found("born 1990-05-12, joined the company on 2015-03-01") == [("DATE_OF_BIRTH", "1990-05-12")]


def test_ip_inside_network_talk_even_with_version_words() -> None:
    assert found("after the upgrade the server 84.17.45.5 refuses connections") == [("IP_ADDRESS", "84.17.45.5")]


def test_ipv4_mapped_ipv6_is_one_entity() -> None:
    assert found("client ::ffff:84.17.45.128 connected") == [("IP_ADDRESS", "::ffff:84.17.45.128")]


def test_types_filter() -> None:
    text = "mail a@b.io, call 555-123-4567"
    assert [e.type for e in detect_patterns(text, {"PHONE_NUMBER"})] == ["PHONE_NUMBER"]
    assert detect_patterns(text, set()) == []


def test_validators() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert credit_card_ok("378282246310005") and not credit_card_ok("9783161484100")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")


@pytest.mark.parametrize(("text", "value"), [
    ("Leave a voicemail at 5649-2461 if nobody answers.", "5649-2461"),
    ("The hotline 1800-4421-77 is open all night.", "1800-4421-77"),
    ("Text the locksmith on 6612-0943 when you arrive.", "6612-0943"),
    ("Text me at 07.4410.2291 once you land.", "07.4410.2291"),
    ("The reception number is 041882630, ask for the ward.", "041882630"),
    ("Her direct line: 0388-21-4471", "0388-21-4471"),
])
def test_phone_words_of_running_text(text: str, value: str) -> None:
    # national formats without a rule of their own count after a word that names a phone or a contact number
    assert [e.value for e in detect_patterns(text, {"PHONE_NUMBER"})] == [value]


@pytest.mark.parametrize("text", [
    "The serial number is 4410 2291 88, printed under the lid.",
    "Text 2 of the anthology runs to 6612 words.",
    "Our support ticket 66120943 was closed without an answer.",
    "The line 4410-2291 in the log shows the retry.",
])
def test_numbers_near_other_words_are_not_phones(text: str) -> None:
    assert detect_patterns(text, {"PHONE_NUMBER"}) == []
