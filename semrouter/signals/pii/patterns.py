"""Validated patterns for structured PII: e-mail, phone, SSN, card, IP, IBAN, date of birth.

Each finder yields candidate spans that passed a checksum / validity rule and the context rules of
`context.py` (versions, sections, arithmetic, coordinates, lottery draws, test fixtures, code lines). Every
finder is one regex scan plus bounded work per candidate; `resolve_overlaps` is O(n log n), so a text costs
time linear in its size (tests/test_pii_linear.py). Phone numbers in formats without a rule of their own are
taken only next to a phone word ("call", "mobile", "fax", "office", ...), card numbers without a known issuer
prefix only after a card word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator

from semrouter.signals.pii import context as ctx
from semrouter.signals.pii.validators import (
    IBAN_LENGTHS,
    credit_card_ok,
    iban_ok,
    ipv4_ok,
    luhn_ok,
    ipv6_ok,
    ssn_ok,
)
from semrouter.signals.types import PIIEntity

# Right before a dotted quad: it is a version, not an address.
_VERSION_BEFORE = re.compile(
    r"(?:\bv\.?|\bversion|\bver\.?|\brelease|\bbuild|\bfirmware|\bpatch|\bupgraded?\s+to|"
    r"\bupdated?\s+to|\bbump(?:ed)?\s+to|[=@~^<>!]|\w-)\s*$",
    re.IGNORECASE,
)
# In the same clause: software talk, unless the clause is also about networks.
_VERSION_WORDS = re.compile(
    r"\b(?:upgrad\w*|updat\w*|downgrad\w*|install\w*|releas\w*|ship(?:s|ped)?|changelog|versions?|patch|firmware|"
    r"build|notes)\b",
    re.IGNORECASE,
)
_NETWORK_WORDS = re.compile(
    r"\b(?:ip|ips|ipv4|address|host|hosts|server|servers|subnet|gateway|dns|ping|ssh|connect\w*|"
    r"firewall|router|proxy|port|network|from|requests?|client|vpn|blocked|traffic|logins?)\b",
    re.IGNORECASE,
)
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social\s+security|soc\.?\s*sec|tax\s+id|tin|itin)\b", re.IGNORECASE)
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|call|text|sms|whatsapp|fax|ring|dial|reach\s+me|number|voice\s*mail|"
    r"hotline|helpline)\b",
    re.IGNORECASE,
)

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w+#./-])(?<!\d[ .-])"
    r"(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|(?:1[ .-]?)?\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"  # (555) 123-4567
    r"|(?:00?1[.-])?\d{3}([.-])\d{3}\1\d{4}"  # 555-123-4567, 555.123.4567, 001-555-123-4567
    r"|\d{3} \d{3} \d{4}"  # 555 123 4567
    r"|\(0\d{1,4}\) ?\d{3,4}[ -]?\d{1,4}"  # (030) 1234 5678, (09290) 81003
    r"|0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}"  # 020 7946 0958, 07700 900123
    r"|0\d{2,4}[ -]\d{5,8}"  # 04036 31730 (area code, then the subscriber number in one group)
    r"|0\d(?:[ .]\d{2}){4}"  # 06 12 34 56 78
    r"|\d{10,11}"  # bare digits: only with phone context (checked below)
    r")"
    r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,5})?"
    r"(?!\w|[ .-]\d)"
)
# Any grouping of 6-15 digits (national formats we have no rule for): only next to a phone word.
_LOOSE_PHONE = re.compile(
    r"(?<![\w+#./:-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?(?:\d{6,15}|\d{2,5}(?:[ .-]\(?\d{1,5}\)?){0,5})"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?![\w]|[.-]\d)"
)
_LOOSE_PHONE_BEFORE = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|call|fax|whatsapp|sms|ring|dial|landline|office|voice\s*mail|hotline|"
    r"helpline|text(?:\s+(?:me|us|him|her|them|the\s+\w+))?\s+(?:on|at)|"
    # a contact number named as one ("the front desk number is", "her direct line:"); not "serial number"
    r"(?:contact|desk|direct|emergency|callback|home|work|reception|support|switchboard)\s+(?:number|line)|"
    r"reach\s+(?:me|us|him|her|them)|contact\s+(?:me|us|him|her))\b[^.!?\n\d]{0,24}$",
    re.IGNORECASE,
)
_PHONE_WORD_AFTER = re.compile(
    r"\s*[(,]?\s*(?:office|fax|mobile|cell|home|work|phone|tel)\b"
    # "... is her mobile", "Is 0361 227501 the right number for the landlord?": a phone word right after; a bare
    # "number" only with a word that makes it a contact number ("Is 31415926 a random number?" is not one)
    r"|\s+(?:\w+\s+){0,2}(?:the|my|his|her|their|our|your|a)\s+(?:(?:\w+\s+)?(?:phone|mobile|cell|landline|tel)\b|"
    r"(?:right|correct|best|new|current|contact|direct|emergency|home|work|office|callback)\s+number\b(?!\s+of\b))",
    re.IGNORECASE,
)
_CARD_CONTEXT = re.compile(
    r"\b(?:card|credit|debit|visa|master\s*card|amex|american\s+express|discover|maestro|jcb|cc)\b[^.!?\n]{0,24}$",
    re.IGNORECASE,
)
_LOOSE_CARD = re.compile(r"(?<![\w#/.+-])\d(?:[ -]?\d){11,18}(?![\w]|[ -]\d)")
_SSN = re.compile(r"(?<![\w#/.+-])(?<!\d[ ])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w]|[-./]\d| \d)")
_CARD = re.compile(
    r"(?<![\w#/.+-])(?<!\d[ -])"
    r"(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"  # 4-4-4-4(-3), also bare 13-19 digits
    r"|\d{4}([ -]?)\d{6}\2\d{4,5})"  # Amex / Diners 4-6-5
    r"(?![\w]|[ -]\d)"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w-]|\.\w|\+)")
_IPV6 = re.compile(
    r"(?<![\w:.%])(?=[0-9A-Fa-f]{0,4}:)"
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})"
    r"(?:%[A-Za-z0-9]+)?(?![\w:.]\w?)"
)
_IBAN_START = re.compile(r"(?<![\w-])([A-Z]{2})(\d{2})(?=[ -]?[A-Za-z0-9])")

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<y1>\d{4})(?P<s1>[-/.])(?P<m1>\d{1,2})(?P=s1)(?P<d1>\d{1,2})"
    r"|(?P<a2>\d{1,2})(?P<s2>[-/.])(?P<b2>\d{1,2})(?P=s2)(?P<y2>\d{4}|\d{2})"
    rf"|(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?(?:\s+|[-/.]){_MONTH}(?:,?\s+|[-/.])(?P<y3>\d{{4}}|\d{{2}})"
    rf"|{_MONTH}\s+(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{{4}})"
    r")(?![\w]|[/.:-]\d|T\d)",
    re.IGNORECASE,
)
_BIRTH_BEFORE = re.compile(
    r"\b(?:born|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday|b-?day|birth|"
    r"geburtsdatum|geboren|n[ée]e?\s+le|date\s+de\s+naissance|fecha\s+de\s+nacimiento|nacid[oa])\b",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[;!?\n]|\.\s+(?=[A-Z])")
_BIRTH_AFTER = re.compile(
    r"\s*(?:[(,-]\s*)?(?:(?:is|was)\s+(?:my|his|her|their)\s+|as\s+(?:my|his|her)\s+)?"
    r"(?:d\.?o\.?b\b|date\s+of\s+birth|birthday|birth\s*date)",
    re.IGNORECASE,
)


def _before(text: str, start: int, width: int = 40) -> str:
    return text[max(0, start - width) : start]


def _card_not_pii(tc: ctx.TextContext, start: int, end: int) -> bool:
    """A card-shaped number that identifies a thing or is a calculation."""
    return tc.identifier_of_thing(start) or tc.arithmetic(start, end)


def _emails(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    for m in _EMAIL.finditer(text):
        if not ctx.reserved_mail_domain(m.group()):
            yield PIIEntity("EMAIL_ADDRESS", m.start(), m.end(), m.group(), 1.0)


def _phones(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    for m in _PHONE.finditer(text):
        value = m.group()
        digits = re.sub(r"\D", "", re.split(r"(?i)\s?(?:x|ext)", value)[0])
        if not 7 <= len(digits) <= 15 or ctx.placeholder_digits(digits):
            continue
        before = _before(text, m.start())
        if tc.numeric_not_pii(m.start(), m.end()):
            continue
        bare = value.isdigit()
        word_after = _PHONE_WORD_AFTER.match(text, m.end(), min(len(text), m.end() + 40))
        if not (_PHONE_CONTEXT.search(before) or word_after) and (bare or tc.code_line(m.start(), m.end())):
            continue  # bare digits, or any number inside a shell command: only when the text says "phone"
        yield PIIEntity("PHONE_NUMBER", m.start(), m.end(), value, 0.9 if bare else 1.0)
    for m in _LOOSE_PHONE.finditer(text):
        value = m.group()
        digits = re.sub(r"\D", "", re.split(r"(?i)\s?(?:x|ext)", value)[0])
        if not 6 <= len(digits) <= 15 or ctx.placeholder_digits(digits):
            continue
        if not (_LOOSE_PHONE_BEFORE.search(_before(text, m.start()))
                or _PHONE_WORD_AFTER.match(text, m.end(), min(len(text), m.end() + 40))):
            continue
        if not tc.numeric_not_pii(m.start(), m.end()):
            yield PIIEntity("PHONE_NUMBER", m.start(), m.end(), value, 0.8)


def _ssns(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    for m in _SSN.finditer(text):
        area, sep, group, serial = m.groups()
        if not ssn_ok(area, group, serial) or ctx.placeholder_digits(area + group + serial):
            continue
        before = _before(text, m.start())
        if tc.numeric_not_pii(m.start(), m.end()):
            continue
        if sep != "-" and not _SSN_CONTEXT.search(before):
            continue  # "123456789" / "123 45 6789" only when the text says it is an SSN
        yield PIIEntity("US_SSN", m.start(), m.end(), m.group(), 1.0)


def _cards(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    strict: set[int] = set()
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not credit_card_ok(digits) or ctx.test_card(digits) or _card_not_pii(tc, m.start(), m.end()):
            continue
        strict.add(m.start())
        yield PIIEntity("CREDIT_CARD", m.start(), m.end(), m.group(), 1.0)
    # After a card word, any Luhn-valid 12-19 digits (issuers we have no prefix rule for, old JCB, Maestro).
    for m in _LOOSE_CARD.finditer(text):
        if m.start() in strict:
            continue
        digits = re.sub(r"\D", "", m.group())
        if not _CARD_CONTEXT.search(_before(text, m.start())) or not luhn_ok(digits) or ctx.test_card(digits):
            continue
        if not ctx.placeholder_digits(digits) and not _card_not_pii(tc, m.start(), m.end()):
            yield PIIEntity("CREDIT_CARD", m.start(), m.end(), m.group(), 0.9)


def _unpad_ipv4(value: str) -> str:
    """"081.002.069.160" -> "81.2.69.160": zero-padded (fixed-width) dotted quads, as some logs print them.
    The `ipaddress` module rejects leading zeros (they meant octal to old parsers); the span keeps the text."""
    parts = value.split(".")
    if any(len(p) > 1 and p[0] == "0" for p in parts) and all(len(p) <= 3 for p in parts):
        return ".".join(str(int(p)) for p in parts)
    return value


def _ips(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    for m in _IPV4.finditer(text):
        value = _unpad_ipv4(m.group())
        if not ipv4_ok(value) or not ctx.personal_ip(value) or _VERSION_BEFORE.search(_before(text, m.start(), 24)):
            continue
        if tc.identifier_of_thing(m.start()):
            continue
        clause = _CLAUSE_BREAK.split(_before(text, m.start(), 48))[-1]
        versionish = _VERSION_WORDS.search(clause) or ctx.small_dotted_quad(value)
        if versionish and not _NETWORK_WORDS.search(clause):
            continue
        yield PIIEntity("IP_ADDRESS", m.start(), m.end(), m.group(), 1.0)
    for m in _IPV6.finditer(text):
        value = m.group()
        hexdigits = sum(c in "0123456789abcdefABCDEF" for c in value.split("%")[0])
        if hexdigits >= 3 and ("::" in value or value.count(":") == 7) and ipv6_ok(value) and ctx.personal_ip(value):
            yield PIIEntity("IP_ADDRESS", m.start(), m.end(), value, 1.0)


def _ibans(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    for m in _IBAN_START.finditer(text):
        want = IBAN_LENGTHS.get(m.group(1))
        if want is None:
            continue
        chars = [m.group(1), m.group(2)]
        count, i = 4, m.end()
        while count < want and i < len(text):
            ch = text[i]
            if ch.isascii() and ch.isalnum():
                chars.append(ch)
                count += 1
            elif not (ch in " -" and i + 1 < len(text) and text[i + 1].isalnum() and text[i - 1].isalnum()):
                break
            i += 1
        if count != want or (i < len(text) and text[i].isalnum()):
            continue
        if iban_ok("".join(chars)):
            yield PIIEntity("IBAN_CODE", m.start(), i, text[m.start() : i], 1.0)


def _date_ok(m: re.Match[str]) -> bool:
    g = m.groupdict()
    if g["y1"]:
        y, mo, d = int(g["y1"]), int(g["m1"]), int(g["d1"])
    elif g["y2"]:
        a, b, y = int(g["a2"]), int(g["b2"]), int(g["y2"])
        if len(g["y2"]) == 2:
            y += 1900
        mo, d = (a, b) if a <= 12 else (b, a)  # US month/day or European day/month
    else:
        y, mo, d = int(g["y3"] or g["y4"]), 1, int(g["d3"] or g["d4"])
        if y < 100:  # "3 Mar 87"
            y += 1900
    return 1900 <= y <= 2030 and 1 <= mo <= 12 and 1 <= d <= 31


def _dobs(tc: ctx.TextContext) -> Iterator[PIIEntity]:
    text = tc.text
    prev_end = 0
    for m in _DATE.finditer(text):
        if not _date_ok(m):
            continue
        before = text[max(prev_end, m.start() - 60) : m.start()]
        before = _CLAUSE_BREAK.split(before)[-1]  # the birth word must be in the same clause
        after = _BIRTH_AFTER.match(text, m.end(), min(len(text), m.end() + 40))
        if _BIRTH_BEFORE.search(before) or after:
            yield PIIEntity("DATE_OF_BIRTH", m.start(), m.end(), m.group(), 1.0)
        # a birth word before (or claimed after) an earlier date does not count for this one
        prev_end = after.end() if after else m.end()


_FINDERS: dict[str, Callable[[ctx.TextContext], Iterator[PIIEntity]]] = {
    "EMAIL_ADDRESS": _emails,
    "IBAN_CODE": _ibans,
    "CREDIT_CARD": _cards,
    "US_SSN": _ssns,
    "IP_ADDRESS": _ips,
    "DATE_OF_BIRTH": _dobs,
    "PHONE_NUMBER": _phones,
}
# Earlier wins when two validated matches overlap (after length): checksummed types first.
_PRIORITY = {t: i for i, t in enumerate(_FINDERS)}


def resolve_overlaps(found: list[PIIEntity]) -> list[PIIEntity]:
    """Keep non-overlapping entities: structured before learned, then longer, then by priority.

    O(n log n + total span length): claimed characters are marked in a bytearray, so each candidate is
    checked against everything kept so far in time proportional to its own length (entities are short),
    never against the list of kept entities (which was quadratic on large pastes).
    """
    if len(found) < 2:
        return list(found)

    def rank(e: PIIEntity) -> tuple[int, int, int, int]:
        learned = 1 if e.type not in _PRIORITY else 0
        return (learned, -(e.end - e.start), _PRIORITY.get(e.type, 99), e.start)

    base = min(e.start for e in found)
    claimed = bytearray(max(e.end for e in found) - base)
    kept: list[PIIEntity] = []
    for e in sorted(found, key=rank):
        s, t = e.start - base, e.end - base
        if claimed.find(1, s, t) == -1:
            claimed[s:t] = b"\x01" * (t - s)
            kept.append(e)
    return sorted(kept, key=lambda e: (e.start, e.end))


def detect_patterns(text: str, types: Collection[str] | None = None) -> list[PIIEntity]:
    """All validated structured PII in `text`, non-overlapping, sorted by position."""
    found: list[PIIEntity] = []
    tc = ctx.TextContext(text)
    for type_, finder in _FINDERS.items():
        if types is None or type_ in types:
            found.extend(finder(tc))
    return resolve_overlaps(found)
