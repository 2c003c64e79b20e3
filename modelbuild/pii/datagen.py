"""Synthetic chat requests with character-level PII spans (Faker + hand-written templates).

`make_examples(n, heldout=False, seed=...)` fills the TRAIN templates; `heldout=True` uses the TEST
templates and the held-out part of the hand-written name lists. Gold spans cover every PII type;
look-alikes (order ids, ISBNs, versions, tracking numbers, times) are filled in but not labelled.
"""

from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass, field

from faker import Faker

from modelbuild.pii import names as N
from modelbuild.pii.templates import TEST, TRAIN

NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "en_IN", "pt_BR", "nl_NL", "pl_PL", "tr_TR")
ADDRESS_LOCALES = ("en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT")
IBAN_LOCALES = ("en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL")
CARD_TYPES = ("visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners")

_SLOT = re.compile(r"\{([A-Z_]+)\}")
LABELLED = {
    "PERSON": "PERSON", "FIRST": "PERSON", "LAST": "PERSON", "ADDRESS": "STREET_ADDRESS",
    "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "SSN": "US_SSN", "CARD": "CREDIT_CARD",
    "IP": "IP_ADDRESS", "IBAN": "IBAN_CODE", "DOB": "DATE_OF_BIRTH",
}


@dataclass
class Example:
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, type)


class Filler:
    """Produces slot values; all randomness comes from one seeded RNG."""

    def __init__(self, seed: int, heldout: bool) -> None:
        self.rng = random.Random(seed)
        self.heldout = heldout
        self.fakers: dict[str, Faker] = {}
        for i, loc in enumerate(sorted(set(NAME_LOCALES + ADDRESS_LOCALES + IBAN_LOCALES))):
            f = Faker(loc)
            f.seed_instance(seed * 1000 + i)
            self.fakers[loc] = f
        self.world_first = N.split(N.FIRST_NAMES_WORLD, heldout)
        self.world_last = N.split(N.LAST_NAMES_WORLD, heldout)

    def _f(self, locales: tuple[str, ...]) -> Faker:
        return self.fakers[self.rng.choice(locales)]

    def first(self) -> str:
        if self.rng.random() < 0.35:
            return self.rng.choice(self.world_first)
        return self._f(NAME_LOCALES).first_name()

    def last(self) -> str:
        if self.rng.random() < 0.35:
            return self.rng.choice(self.world_last)
        return self._f(NAME_LOCALES).last_name()

    def person(self) -> str:
        r = self.rng.random()
        if r < 0.12:
            return f"{self.first()} {self.first()} {self.last()}"
        if r < 0.18:
            return f"{self.first()} {self.rng.choice('ABCDEFGHJKLMNPRSTW')}. {self.last()}"
        return f"{self.first()} {self.last()}"

    def address(self) -> str:
        f = self._f(ADDRESS_LOCALES)
        a = re.sub(r"\s*\n\s*", ", ", f.street_address()).strip().strip(",")
        a = re.sub(r"\s{2,}", " ", a)
        if not re.search(r"\d", a):
            a = f"{self.rng.randint(1, 240)} {a}"
        return a

    def phone(self) -> str:
        d = lambda n: "".join(str(self.rng.randint(0, 9)) for _ in range(n))  # noqa: E731
        area, exch = f"{self.rng.randint(2, 9)}{d(2)}", f"{self.rng.randint(2, 9)}{d(2)}"
        fmt = self.rng.choice((
            f"({area}) {exch}-{d(4)}", f"{area}-{exch}-{d(4)}", f"{area}.{exch}.{d(4)}",
            f"+1 {area} {exch} {d(4)}", f"+1-{area}-{exch}-{d(4)}", f"{area} {exch} {d(4)}",
            f"+44 20 {d(4)} {d(4)}", f"+44 7{d(3)} {d(6)}", f"07{d(3)} {d(6)}", f"020 {d(4)} {d(4)}",
            f"+49 30 {d(7)}", f"+49 151 {d(8)}", f"030 {d(8)}", f"0{self.rng.randint(1, 7)} {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}", f"+34 6{d(2)} {d(3)} {d(3)}", f"+39 3{d(2)} {d(3)} {d(4)}",
            f"+91 9{d(4)} {d(5)}", f"+81 90-{d(4)}-{d(4)}", f"({area}) {exch}-{d(4)} ext. {d(3)}",
        ))
        return fmt

    def ssn(self) -> str:
        area = self.rng.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"

    def card(self) -> str:
        kind = self.rng.choice(CARD_TYPES)
        num = self.fakers["en_US"].credit_card_number(card_type=kind)
        r = self.rng.random()
        if len(num) == 16 and r < 0.45:
            return " ".join(num[i : i + 4] for i in range(0, 16, 4))
        if len(num) == 16 and r < 0.6:
            return "-".join(num[i : i + 4] for i in range(0, 16, 4))
        if len(num) == 15 and r < 0.5:
            return f"{num[:4]} {num[4:10]} {num[10:]}"
        return num

    def ip(self) -> str:
        f = self.fakers["en_US"]
        r = self.rng.random()
        if r < 0.4:
            return f.ipv4_public()
        if r < 0.6:
            return f.ipv4_private()
        if r < 0.8:
            return f.ipv6()
        groups = [f"{self.rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        z = self.rng.randint(1, 5)
        groups[z : z + self.rng.randint(2, 3)] = ["0"] * len(groups[z : z + 3])
        return str(ipaddress.IPv6Address(":".join(groups[:8])))

    def iban(self) -> str:
        raw = self._f(IBAN_LOCALES).iban()
        if self.rng.random() < 0.5:
            return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        return raw

    def dob(self) -> str:
        d = self.fakers["en_US"].date_of_birth(minimum_age=1, maximum_age=95)
        month = d.strftime("%B")
        return self.rng.choice((
            d.isoformat(), d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%Y"), f"{month} {d.day}, {d.year}",
            f"{d.day} {month} {d.year}", d.strftime("%d/%m/%Y"), f"{month[:3]} {d.day}, {d.year}",
        ))

    def order(self) -> str:
        d = lambda n: "".join(str(self.rng.randint(0, 9)) for _ in range(n))  # noqa: E731
        return self.rng.choice((f"#{d(7)}", f"ORD-{d(8)}", f"{d(3)}-{d(7)}-{d(7)}", f"#{d(3)}-{d(3)}-{d(4)}", f"A{d(9)}"))

    def fill(self, slot: str) -> str:
        rng, f = self.rng, self.fakers["en_US"]
        simple = {
            "PERSON": self.person, "FIRST": self.first, "LAST": self.last, "ADDRESS": self.address,
            "EMAIL": lambda: self._f(NAME_LOCALES).email(), "PHONE": self.phone, "SSN": self.ssn,
            "CARD": self.card, "IP": self.ip, "IBAN": self.iban, "DOB": self.dob, "ORDER": self.order,
            "TITLE": lambda: rng.choice(N.TITLES), "CITY": lambda: rng.choice(N.CITIES),
            "COMPANY": lambda: rng.choice(N.COMPANIES) if rng.random() < 0.6 else f.company(),
            "PRODUCT": lambda: rng.choice(N.PRODUCTS), "WEEKDAY": lambda: rng.choice(N.WEEKDAYS),
            "MONTH": lambda: rng.choice(N.MONTHS), "COUNTRY": lambda: rng.choice(N.COUNTRIES),
            "TEAM": lambda: rng.choice(N.TEAMS), "BRAND": lambda: rng.choice(N.BRAND_WORDS),
            "ISBN": lambda: f.isbn13() if rng.random() < 0.7 else f.isbn10(),
            "VERSION": lambda: rng.choice(("2.14.3", "1.2.3.4", "v3.11", "10.0.19045.1234", "4.1", "0.23.3")),
            "TRACKING": lambda: rng.choice((f"1Z{f.bothify('???#####', letters='ABCDEFGHJKLMNPRSTVWXYZ')}{f.numerify('##########')}", f.numerify("############"), f.numerify("9400 #### #### #### #### ##"))),
            "TIME": lambda: rng.choice(("10:30", "14:45:00", "9 am", f.date_time().isoformat(timespec="seconds"))),
            "NUM": lambda: str(rng.randint(2, 500)),
        }
        return simple[slot]()


def render(template: str, filler: Filler) -> Example:
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos, length = 0, 0
    for m in _SLOT.finditer(template):
        lit = template[pos : m.start()]
        parts.append(lit)
        length += len(lit)
        value = filler.fill(m.group(1))
        if m.group(1) in LABELLED:
            type_ = LABELLED[m.group(1)]
            if spans and spans[-1][2] == type_ and spans[-1][1] == length - 1 and lit == " ":
                spans[-1] = (spans[-1][0], length + len(value), type_)  # "{FIRST} {LAST}": one name
            else:
                spans.append((length, length + len(value), type_))
        parts.append(value)
        length += len(value)
        pos = m.end()
    parts.append(template[pos:])
    text = "".join(parts)
    if filler.rng.random() < 0.15 and all(t != "IBAN_CODE" for _, _, t in spans):  # people type in lower case too
        text = text.lower()
    return Example(text, spans)


def make_examples(n: int, *, heldout: bool = False, seed: int = 13) -> list[Example]:
    """`n` examples from the TRAIN (or held-out TEST) templates, deterministic for a seed."""
    filler = Filler(seed, heldout)
    templates = TEST if heldout else TRAIN
    return [render(filler.rng.choice(templates), filler) for _ in range(n)]


def lookalike_texts(n: int, seed: int = 99) -> list[str]:
    """Sentences whose numbers look like PII but are not (no gold spans)."""
    filler = Filler(seed, heldout=True)
    rng, f = filler.rng, filler.fakers["en_US"]
    d = lambda k: "".join(str(rng.randint(0, 9)) for _ in range(k))  # noqa: E731
    makers = (
        lambda: f"Where is my order {filler.order()}?",
        lambda: f"Order number {d(3)}-{d(3)}-{d(4)} was cancelled.",
        lambda: f"The book with ISBN {f.isbn13()} is out of print.",
        lambda: f"ISBN {f.isbn13().replace('-', '')} and {f.isbn10()} are the same title.",
        lambda: f"Upgrade pydantic to version {rng.randint(1, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)} please.",
        lambda: f"We run v{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)} in prod.",
        lambda: f"Firmware {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)} fixed it.",
        lambda: f"Product code {d(3)}-{d(3)}-{d(4)} is out of stock.",
        lambda: f"SKU {d(3)}-{d(2)}-{d(4)} ships tomorrow.",
        lambda: f"Part number {d(4)} {d(4)} {d(4)} {d(4)} fits the pump.",
        lambda: f"UPS tracking 1Z{f.bothify('??#####', letters='ABCDEFGHJKLMNPRSTVWXYZ')}{d(10)} says delivered.",
        lambda: f"USPS tracking {d(4)} {d(4)} {d(4)} {d(4)} {d(4)} {d(2)} is stuck.",
        lambda: f"FedEx tracking {d(12)} arrives {rng.choice(N.WEEKDAYS)}.",
        lambda: f"The job ran at {f.date_time().isoformat(timespec='seconds')}Z and took {d(2)} s.",
        lambda: f"Log line: {f.date_time().strftime('%Y-%m-%d %H:%M:%S')} ERROR timeout",
        lambda: f"The meeting is on {f.date_this_decade().isoformat()} at 10:30.",
        lambda: f"Invoice {d(10)} totals {d(3)}.{d(2)} EUR.",
        lambda: f"Python 3.{rng.randint(8, 13)}.{rng.randint(0, 9)} and numpy {rng.randint(1, 2)}.{rng.randint(0, 30)}.{rng.randint(0, 5)} disagree.",
        lambda: f"Ticket #{d(6)} mentions commit {f.sha1()[:10]}.",
        lambda: f"The EAN barcode {f.ean13()} is printed on the box.",
    )
    return [rng.choice(makers)() for _ in range(n)]
