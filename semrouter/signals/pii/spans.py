"""Which spans the learned tagger proposes are a person's name or a street address (pure functions).

The token head reads the encoder's context but was trained on chat-style sentences; on shell commands,
code, maths and role-play it proposes words that cannot be personal data. These checks look at the span's
own shape and a bounded window around it (linear in the text):

- names are words of letters (with ' ’ - . inside: O'Neil, Jean-Luc, J.); no digits, paths, flags, globs;
- a name has at least one cased letter (the head was not trained on uncased scripts, where it guesses);
- nothing on a line that reads as a shell command or code (flags, pipes, `$(`, printf);
- a capitalised verb opening a sentence ("Listen on ...", "Remove files ...", "Mix two ...") is not a name;
- a persona or a work of fiction is not a person here: "You are Galadriel", "role-play as ...", names
  inside a quoted title, right after "the novel", "character", ... ;
- an address has a house number and a street word, or a capitalised street name next to the number; a
  number next to a unit or a common word ("radius 5", "49 litres", "track 4") is not one.
"""

from __future__ import annotations

import re

from semrouter.signals.pii.context import TextContext

_NAME_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’.-](?=[^\W\d_]))*\.?")

# Verbs that open instructions and commands. Words that are also common given names (Mark, Will, Bill, Pat,
# Grace, Sue, Rob, Jack, Chase, Drew, Dean, Frank, Max, Ray, Rose, Hope, Joy, ...) are left out on purpose.
IMPERATIVES: frozenset[str] = frozenset("""
add adjust allow analyse analyze answer append apply archive arrange ask assume attach avoid backup be become
begin bind block boot break bring build bump calculate cancel capture change check choose classify clean
clear click clone close collect combine come commit compare compile compose compress compute concatenate
configure confirm connect consider construct continue convert copy correct count create crop cut debug
decode decompress decrypt define delete deploy describe design detect determine develop diff disable
discuss display do download draft draw dump edit elaborate emulate enable encode encrypt ensure enter
estimate evaluate execute exit expand explain export extract fetch fill filter find finish fix flush
follow force forget format forward generate get give go grab grant group guess handle help hide highlight
identify ignore imagine implement import improve include increase indent initialize initialise insert
inspect install interpret introduce invert join keep kill label launch let limit link lint list listen
load locate lock log look lookup make manage map match measure merge migrate minimize mix modify monitor
mount move name navigate note notify obtain open optimize order organize outline output pack parse paste
pause perform pick ping pipe plan play plot point poll predict prefer prepare present pretend preview print
proceed process produce profile prompt propose protect prove provide publish pull purge push put query
read rebase rebuild receive recommend record recover redirect reduce refactor refresh register reload
remember remove rename render reorder repeat rephrase replace reply report request reset resize resolve
respond restart restore resume retrieve return reverse review revise rewrite rotate run sample save say
scan schedule scroll search select send serve set share shift show shrink shuffle shut simplify simulate
skip sleep slice solve sort specify split start stop store stream strip submit suggest summarize summarise
suppose swap switch sync tag take talk tell test think toggle touch trace track train transfer transform
translate trim truncate try turn type unlock unmount unpack unzip update upgrade upload use validate verify
view visit wait walk watch wrap write zip
""".split())

_PERSONA_BEFORE = re.compile(
    r"(?:\b(?:you\s+are|you're|imagine\s+you(?:'re|\s+are))\b[^.!?\n]{0,40}|"
    r"\b(?:role|perspective|voice|shoes|persona)\s+of|"
    r"\bact\s+as|\bacting\s+as|\brole-?\s*play(?:ing)?\s+as|\bpretend\s+(?:to\s+be|you(?:'re|\s+are))|"
    r"\bplay(?:ing)?\s+(?:the\s+role\s+of|as)|\bimpersonat\w*|\bin\s+the\s+(?:role|voice|style)\s+of|\bcharacter|"
    r"\bnovel|\bbook|\bfilm|\bmovie|\bseries|\bsaga|\bstory|\bpoem|\bplay|\bmusical|\bopera|\bsitcom|\bshow|\bgame|"
    r"\bepisode|\bcomic|\bmanga|\banime|\bfictional|\bfictitious|\bprotagonist|\bvillain|\bhero(?:ine)?|\bknights?)"
    r"\W{0,3}(?:(?:the|a|an|of|named|called)\s+)*['\"“‘*_]?$",
    re.IGNORECASE,
)
# "Harry Potter and the Goblet of Fire", "Percy Jackson and the Olympians": a title, not a person.
_TITLE_AFTER = re.compile(r"\s+(?:and|of|in)\s+the\s+[A-Z]")
_TITLE_BEFORE = re.compile(r"\b(?:and|of|in)\s+the\s+(?:[A-Z][\w'’-]*\s+){0,3}$")
_QUOTES = {"'": "'", '"': '"', "“": "”", "‘": "’", "*": "*", "_": "_", "«": "»"}
_STREET_WORDS = frozenset("""street st road rd avenue ave lane ln drive dr boulevard blvd way court ct place pl
square sq terrace close crescent highway hwy parkway pkwy circle cir trail alley row walk gardens park hill
suite apt apartment unit flat floor box po strasse straße str rue avenida av via calle platz weg allee gasse
viale corso plaza rua estrada vej gatan gata väg vägen straat laan plein ulica""".split())
_NOT_ADDRESS_WORDS = frozenset("""is are was were be the a an of to in on at by for with and or than then that this
these those it its is maybe about around radius diameter side length width height depth area volume ratio
proportion number numbers characters chars bytes bits items times percent per minutes seconds hours days
weeks months years litres liters meters metres km kg cm mm grams pounds miles feet inches degrees step
steps track tracks page pages chapter line lines level levels version points players em é e o
question questions verse chorus bridge intro outro act scene part round stage phase episode season task exercise
problem ad bc bce ce century centuries iq vers
""".split())


_STREET_SUFFIXES = ("straße", "strasse", "str.", "weg", "gasse", "allee", "platz", "straat", "laan", "gatan", "vägen",
                    "gade", "vej", "ulica")


def street_word(value: str) -> bool:
    """The span names a street kind ("Road", "calle", "rua", "Hauptstraße", "Kirchweg"): the evidence an address
    needs where the head is not trusted (languages it was not trained on), instead of any capitalised word."""
    words = [w.lower() for w in re.findall(r"[^\W\d_][\w.]*", value)]
    return any(w.rstrip(".") in _STREET_WORDS or (w.endswith(_STREET_SUFFIXES) and len(w) > 6) for w in words)


_EDGE_PUNCT = ",;:!?>\"'“”‘’«»()[]*_•"  # not "-": a leading dash is a command-line flag


def name_words_ok(value: str) -> bool:
    """Every word is made of letters (inner ' ’ - . allowed), and at least one letter has a case.

    Punctuation around words (quote marks, "> " of a quoted e-mail, "???" separators) does not count.
    """
    words = [w for w in (w.strip(_EDGE_PUNCT) for w in value.split()) if w]
    if not words or not all(_NAME_WORD.fullmatch(w) for w in words):
        return False
    return any(ch.isupper() or ch.islower() for ch in value)


def _sentence_start(text: str, start: int) -> bool:
    before = text[max(0, start - 8) : start].rstrip()
    return not before or before[-1] in ".!?:;\n\"'(-*>•"


def leading_imperative(text: str, start: int, end: int) -> int:
    """Where the name starts once a sentence-opening verb is dropped ("Tell Ana" -> "Ana"); `end` if only a verb."""
    m = re.match(r"\S+", text[start:end])
    if m and _sentence_start(text, start) and m.group().lower().strip(",.:;!?") in IMPERATIVES:
        rest = text[start + m.end() : end]
        return start + m.end() + (len(rest) - len(rest.lstrip()))
    return start


def persona_or_fiction(text: str, start: int, end: int) -> bool:
    """A persona the assistant is asked to play, or a name inside/next to the title of a work."""
    before = text[max(0, start - 48) : start]
    if _PERSONA_BEFORE.search(before) or _TITLE_AFTER.match(text, end, end + 24) or _TITLE_BEFORE.search(before):
        return True
    # inside a quoted or emphasised title that holds more than the name: 'The Lord of the Rings', *Hamlet*
    for open_, close in _QUOTES.items():
        i = text.rfind(open_, max(0, start - 48), start)
        if i < 0 or (open_ in "'’" and i > 0 and text[i - 1].isalnum()):
            continue
        j = text.find(close, end, end + 48)
        if j >= 0 and "\n" not in text[i:j]:
            return True
    return False


def person_ok(tc: TextContext, start: int, end: int) -> bool:
    """The span [start, end) of `tc.text` can be a real person's name."""
    value = tc.text[start:end]
    return (name_words_ok(value) and not tc.code_line(start, end)
            and not persona_or_fiction(tc.text, start, end))


_SENTENCE_END = re.compile(r"(\w+)[.!?][ \t]+([A-Z]\w*)")
_ADDRESS_ABBREV = frozenset("ave blvd hwy pkwy str ctra carr avda apt ste bldg".split())


def _crosses_sentence(value: str) -> bool:
    """A sentence ends inside the span ("side of 20. The perimeter"): an address does not. Not a sentence end: an
    abbreviation ("St.", "ul.", "P.O.", "Ctra."), a house number with a dot before a unit ("u. 49. Suite 6")."""
    for m in _SENTENCE_END.finditer(value):
        word, following = m.group(1).lower(), m.group(2).lower()
        if len(word) <= 2 and not word.isdigit() or word in _ADDRESS_ABBREV or following in _STREET_WORDS:
            continue
        return True
    return False


def address_ok(tc: TextContext, start: int, end: int) -> bool:
    """The span can be a street address: a house number with a street word or a capitalised street name."""
    value = tc.text[start:end]
    if tc.code_line(start, end) or re.search(r"[=*@/\\`$|{}\[\]]|(?:^|\s)-[\w-]", value):
        return False
    if re.search(r"\d\.\d{3,}", value) and tc.coordinates(start, end):  # "51.5007 N, 0.1246 W": a position
        return False
    words = re.findall(r"[^\W\d_]+", value)
    if not words or not any(ch.isdigit() for ch in value) or _crosses_sentence(value):
        return False
    if any(w.lower() in _STREET_WORDS for w in words):
        return True
    names = [w for w in words if w[0].isupper() and w.lower() not in _NOT_ADDRESS_WORDS]
    return bool(names) and not all(w.lower() in _NOT_ADDRESS_WORDS for w in words)
