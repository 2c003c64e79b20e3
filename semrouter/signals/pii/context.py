"""Context rules: when a number or address that passed its validator is still not personal data.

Every rule looks at a bounded window around the candidate (a few dozen characters), so detection stays
linear in the text. Kinds handled (each with its own test in tests/test_pii_context.py):

- identifiers of things: order/tracking/ISBN/SKU numbers, versions, spec sections (`§ 4.2.1.3`, "section");
- arithmetic written with dashes or other operators (`100-20-5 =`, "what is 555-123-4567 minus 3");
- coordinates (`40.7128, -74.0060`, "lat", "longitude", degree signs);
- lottery and game draws ("winning numbers 05 12 23 34 45");
- test fixtures: the payment networks' published test card numbers, placeholder digit runs
  (`+1234567890`, `555-555-5555`), documentation / private / loopback IPs and public resolvers, e-mail at
  reserved domains (RFC 2606: example.com, .test, .invalid, .localhost).
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left, bisect_right

_WINDOW = 48

# Words right before a number that make it an identifier of something else, not personal data
# ("order no. 555-123-4567", "section 4.3.2.1", "ISBN: ...", "§ 2.1.3.4").
THINGS: frozenset[str] = frozenset("""
order orders invoice tracking track shipment parcel package sku part product item model serial ticket ref
reference isbn issn doi version ver build release firmware case confirmation booking reservation po batch lot
claim policy transaction txn barcode upc ean patent catalog catalogue article container flight room page pages
issue pr commit bug error code section sections sec clause chapter paragraph para appendix annex figure fig
table step rule requirement exhibit schedule regulation statute rfc iso iec ieee usc cfr verse equation eq
theorem lemma listing port pid uid gid hash sha checksum
""".split())
_NUMBER_WORDS = frozenset("no nr number num # id ids code numbers".split())
_LINK_WORDS = frozenset("is was : # =".split())
_TOKENS = re.compile(r"§+|#|[:=]|[^\s:=#§]+")

# "what is" / "calculate" right before the digits; operator words anywhere close.
_ARITH_LEAD = re.compile(
    r"\b(?:what\s+is|what's|whats|calculate|compute|evaluate|solve|simplify|sum\s+of|result\s+of|"
    r"difference\s+(?:of|between))\s*[:(]?\s*$",
    re.IGNORECASE,
)
_ARITH_WORDS = re.compile(
    r"\b(?:subtract\w*|minus|plus|divided\s+by|equals?|arithmetic|negative|positive|divisible|prime)\b",
    re.IGNORECASE,
)
_OPERATOR_AFTER = re.compile(
    r"\s*(?:[=×÷^]|[+*/]\s*\d|-\s*\d|minus\b|plus\b|times\b|equals?\b|divided\b)", re.IGNORECASE
)
_OPERATOR_BEFORE = re.compile(r"(?:\d\s*[-+*/×÷^=]|[×÷^])\s*$")

_COORD_WORDS = re.compile(
    r"\b(?:lat|lats|latitude|lon|lng|long|longitude|coord\w*|gps|geo\w*|location|position|waypoint|"
    r"north|south|east|west)\b|°",
    re.IGNORECASE,
)
_COORD_PAIR = re.compile(r"-?\d{1,3}\.\d{3,}\s*°?\s*[NSEW]?\s*[,; ]\s*-?\d{1,3}\.\d{3,}")

_LOTTERY_WORDS = re.compile(
    r"\b(?:lottery|lotto|powerball|mega\s*millions|euro\s*millions|jackpot|draws?|drawn|drawing|"
    r"winning|bonus\s+ball|keno|bingo|raffle|numbers\s+(?:were|are|is))\b",
    re.IGNORECASE,
)

# Published test numbers of the card networks and payment processors (Stripe, Adyen, PayPal, Braintree docs).
TEST_CARDS: frozenset[str] = frozenset("""
4111111111111111 4242424242424242 4012888888881881 4222222222222 4000056655665556 4000000000000002
4000000000000077 4000000000000093 4000000000000127 4000000000009995 4000002500003155 4000000000003220
4111111111111129 4005519200000004 4009348888881881 4012000033330026 4012000077777777 4217651111111119
4500600000000061 4988438843884305 4166676667666746 4646464646464644 4000620000000007 4035501000000008
5555555555554444 5105105105105100 5200828282828210 5500000000000004 5454545454545454 5431111111111111
5425233430109903 2223000048410010 2223003122003222 2222400070000005 5199999999999991 5101180000000007
378282246310005 371449635398431 378734493671000 370000000000002 340000000000009 6011111111111117
6011000990139424 6011601160116611 6011000400000000 6445644564456445 3530111333300000 3566002020360505
3566111111111113 30569309025904 38520000023237 36227206271667 36006666333344 6200000000000005
6759649826438453 6304000000000000 6799990100000000019 5018000000000009
""".split())

_PUBLIC_RESOLVERS: frozenset[str] = frozenset(
    "8.8.8.8 8.8.4.4 1.1.1.1 1.0.0.1 9.9.9.9 149.112.112.112 208.67.222.222 208.67.220.220 "
    "4.2.2.2 4.2.2.1 2001:4860:4860::8888 2001:4860:4860::8844 2606:4700:4700::1111 "
    "2606:4700:4700::1001 2620:fe::fe".split()
)
_RESERVED_MAIL = re.compile(
    r"@(?:[\w-]+\.)*(?:example\.(?:com|net|org)|[\w-]+\.(?:example|test|invalid|localhost|local))$",
    re.IGNORECASE,
)


def before(text: str, start: int, width: int = _WINDOW) -> str:
    """Up to `width` characters before `start`, cut at the last line break (a new line is a new context)."""
    return text[max(0, start - width) : start].rpartition("\n")[2]


_CLAUSE_END = re.compile(r"[;!?\n]|\.\s")
_CODE_LINE = re.compile(r"&&|\|\||\s\|\s|\$\(|\s--?[A-Za-z][\w-]*|==|\bprintf\b|\becho\b|\bsudo\b|`")


class TextContext:
    """One text and the positions of the words the rules look for, found once per text.

    Each rule asks "is such a word within this window of the candidate?" with a binary search over the
    positions, so a text with N candidates costs O(len(text) + N log N) whatever it contains.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: dict[int, list[int]] = {}
        self._clause_starts: list[int] | None = None
        self._clause_ends: list[int] | None = None

    def _positions(self, rx: re.Pattern[str]) -> list[int]:
        got = self._starts.get(id(rx))
        if got is None:
            got = self._starts[id(rx)] = [m.start() for m in rx.finditer(self.text)]
        return got

    def near(self, rx: re.Pattern[str], lo: int, hi: int) -> bool:
        """True when a match of `rx` starts in [lo, hi)."""
        pos = self._positions(rx)
        i = bisect_left(pos, max(0, lo))
        return i < len(pos) and pos[i] < hi

    def clause(self, start: int, end: int, back: int, fwd: int) -> tuple[int, int]:
        """[lo, hi): at most `back` characters before `start` and `fwd` after `end`, inside one clause."""
        if self._clause_ends is None:
            ms = list(_CLAUSE_END.finditer(self.text))
            self._clause_ends, self._clause_starts = [m.end() for m in ms], [m.start() for m in ms]
        assert self._clause_starts is not None
        i = bisect_right(self._clause_ends, start) - 1
        lo = max(start - back, self._clause_ends[i] if i >= 0 else 0)
        j = bisect_left(self._clause_starts, end)
        hi = min(end + fwd, self._clause_starts[j] if j < len(self._clause_starts) else len(self.text))
        return lo, hi

    def line(self, start: int, end: int, back: int, fwd: int) -> tuple[int, int]:
        """[lo, hi): at most `back` / `fwd` characters around the candidate, inside its line."""
        t = self.text
        lo = max(start - back, t.rfind("\n", max(0, start - back), start) + 1)
        nl = t.find("\n", end, end + fwd)
        return lo, (nl if nl >= 0 else min(len(t), end + fwd))

    def code_line(self, start: int, end: int) -> bool:
        """True when the line around the candidate reads as a shell command or code (flags, pipes, printf)."""
        return self.near(_CODE_LINE, *self.line(start, end, 80, 80))

    def identifier_of_thing(self, start: int) -> bool:
        """True when the words right before say the number identifies an object, a version or a section.

        Reads at most the last four tokens before `start`: "<thing> [no.|number|#|id] [is|:|#|=]" or "§".
        """
        toks = _TOKENS.findall(before(self.text, start, 40))[-4:]
        if toks and toks[-1].startswith("§"):
            return True
        if toks and toks[-1] in _LINK_WORDS:
            toks.pop()
        if toks and toks[-1].lower().rstrip(".") in _NUMBER_WORDS and len(toks) > 1:
            toks.pop()
        if not toks:
            return False
        word = toks[-1].lower()
        return word.rstrip(".") in THINGS and word.count(".") <= 1

    def arithmetic(self, start: int, end: int) -> bool:
        """True when the digits are a calculation: an operator touches them, or the clause asks to compute."""
        t = self.text
        b = before(t, start, 32)
        return (
            _OPERATOR_AFTER.match(t, end, min(len(t), end + 12)) is not None
            or _OPERATOR_BEFORE.search(b) is not None
            or _ARITH_LEAD.search(b) is not None
            or self.near(_ARITH_WORDS, *self.line(start, end, 32, 24))
        )

    def coordinates(self, start: int, end: int) -> bool:
        """True for a latitude/longitude: a decimal pair around the candidate, or geo words next to it."""
        return self.near(_COORD_PAIR, start - 24, end + 1) or self.near(_COORD_WORDS, *self.clause(start, end, 32, 16))

    def lottery(self, start: int, end: int) -> bool:
        """True when the numbers are a lottery or game draw (said in the words around them)."""
        return self.near(_LOTTERY_WORDS, *self.clause(start, end, 60, 24))

    def numeric_not_pii(self, start: int, end: int) -> bool:
        """Digits that identify a thing, are a calculation, a coordinate or a lottery draw."""
        return (self.identifier_of_thing(start) or self.arithmetic(start, end)
                or self.coordinates(start, end) or self.lottery(start, end))


def test_card(digits: str) -> bool:
    """A published test card number (Stripe, Adyen, PayPal, ...): never a real person's card."""
    return digits in TEST_CARDS


def placeholder_digits(digits: str) -> bool:
    """Digit runs people type as placeholders: 1234567890, 123-45-6789, 9876543210, 555-555-5555, 000..."""
    if len(set(digits)) <= 2:
        return True
    core = digits.lstrip("0") or "0"
    return core in "1234567890123456789" or core in "9876543210987654321"


def personal_ip(value: str) -> bool:
    """True for an address that can point at a person: global unicast, not a well-known public service.

    Private, loopback, link-local, documentation (192.0.2.0/24, 2001:db8::/32), unspecified and multicast
    ranges identify nobody outside one network; public resolvers (8.8.8.8, 1.1.1.1, ...) are services.
    """
    addr = value.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if addr in _PUBLIC_RESOLVERS or str(ip) in _PUBLIC_RESOLVERS:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def small_dotted_quad(value: str) -> bool:
    """Four small parts (each <= 20, as in `2.4.1.0` or `4.3.2.1`): a version or section, not a host."""
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) <= 20 for p in parts)


def reserved_mail_domain(value: str) -> bool:
    """E-mail at a domain reserved for documentation and tests (RFC 2606 / RFC 6761): nobody's mailbox."""
    return _RESERVED_MAIL.search(value) is not None
