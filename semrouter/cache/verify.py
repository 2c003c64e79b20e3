"""Hit verification: reject near-misses that cosine similarity alone would serve.

Sentence embeddings put "foods that raise blood pressure" next to "foods that lower blood
pressure", and "convert 5 miles to km" next to "convert 8 miles to km". After the vector search
finds a candidate above the threshold, `Verifier.check(query, cached_prompt)` compares the two
texts with cheap, explainable rules and refuses the hit when any of these differ:

* numbers: the multiset of numbers (digits, number words "five", ordinals "5th"/"fifth");
* negation: how many negations the text has (not, no, never, n't, without, ...; and the plain negation words
  of the other languages the language signal knows that write words with Latin or Cyrillic letters:
  nicht, pas, niet, nie, не, ...; Chinese and Japanese negation is left to the learned verifier): counted, so
  a second negation added to a negated text ("there is no excuse" vs "there isn't no excuse") also differs;
* antonyms: one text has a word whose antonym (built-in list) is in the other instead, or the same word with a
  negating prefix or suffix ("likely" vs "unlikely", "agree" vs "disagree", "useful" vs "useless");
* units: the unit or language converted to ("5 miles to km" vs "5 km to miles", "how many kg is ..." vs
  "how many pounds is ..."), or one unit word put in place of another anywhere ("minutes" vs "hours");
* direction: the words around a relation (to, from, into, than, vs, before, after, over) trade places
  ("copy a to b" vs "copy b to a", "is x bigger than y" vs "is y bigger than x");
* order: the same content words (and relation words) in another order that is not one phrase moved from one
  end to the other ("move the logs from the archive into tmp" vs "move the logs from tmp into the archive",
  "a bites b" vs "b bites a"; as written too: "http to https" vs "https to http", one stem): cheap to refuse, and a
  rewording rarely keeps every word while reordering them;
* languages (a family for the multilingual spaces, cache.multilingual.veto): the languages both texts name differ,
  named in English or in any of the spaces' languages ("traduce al francés" vs "traduce al alemán", "ins Englische" vs
  "ins Französische", 英語 vs 中国語): the e5 cosine of such a pair is 0.95-0.98, and the English `units` family
  only knows the English names;
* specific tokens: a content word present in only one text that looks like a name or
  identifier — contains a digit or symbol (c++, gpt-4, node.js), is capitalised inside the
  sentence (Paris, Rust), or, when a vocabulary of common words is given, is not in it (pandas
  vs polars) — while the other text also has a differing content word (a substitution).

It is a pure function of the two strings (no model, microseconds per call).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from dataclasses import dataclass

PARSE_MEMO = 64  # parsed texts kept per Verifier (a lookup's prompt and its candidates)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9+#._'-]*[A-Za-z0-9+#]|[A-Za-z]|\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")
_NUM_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "first": 1, "second": 2, "third": 3,
    "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "twice": 2,
    "half": 0.5, "once": 1, "single": 1, "double": 2, "triple": 3,
}
_NEGATIONS = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "unable",
    "nowhere", "lack", "lacking", "hardly", "scarcely", "barely", "seldom",
    # contractions typed without the apostrophe
    "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt", "couldnt",
    "shouldnt", "havent", "hasnt", "hadnt", "aint",
    # the Latin-script languages of the language signal (de, es, fr, it, pt, nl, pl): words that negate alone
    "nicht", "nichts", "kein", "keine", "keinen", "keinem", "keiner", "niemals", "niemand", "nunca", "nada",
    "nadie", "ninguno", "ninguna", "tampoco", "pas", "jamais", "rien", "aucun", "aucune", "non", "nessuno",
    "niente", "nulla", "nenhum", "nenhuma", "niet", "geen", "nooit", "niets", "nie", "nigdy",
})
_NEGATIONS_CYRILLIC = frozenset({"не", "нет", "ни", "никогда", "ничего", "никто", "нельзя"})
_CYRILLIC_WORD = re.compile(r"[а-яё]+")
# negation words with letters outside A-Z (the word pattern above splits them): pt, es, pl
_NEGATIONS_ACCENTED = frozenset({"não", "ninguém", "ningún", "jamás", "żaden", "żadna", "żadne", "żadnego"})
_ACCENTED_WORD = re.compile(r"[^\W\d_]*[^\x00-\x7f\W\d_][^\W\d_]*")
# Japanese and Chinese negation markers, counted as substrings (no word boundaries in those scripts): the verb and
# adjective endings ない / ません / なかっ, and 不 / 没 / 未
_NEGATIONS_CJK = re.compile(r"ない|ません|なかっ|[不没沒未]")
_DIGITS = re.compile(r"\d+")
# Language names (lower-case word beginnings; CJK as written) -> ISO 639-1 code: English and the multilingual spaces'
# languages, each named in English, es, fr, de, it, pt, nl, pl, ru (stems: inflected forms follow), ja and zh.
_LANGUAGE_STEMS: dict[str, tuple[str, ...]] = {
    "en": ("english", "inglés", "ingles", "anglais", "englisch", "inglese", "inglês", "engels", "angielsk",
           "английск", "英語", "英语", "英文"),
    "es": ("spanish", "español", "espanol", "castellano", "espagnol", "spanisch", "spagnolo", "espanhol", "spaans",
           "hiszpańsk", "испанск", "スペイン語", "西班牙语", "西班牙文"),
    "fr": ("french", "francés", "frances", "français", "francais", "französisch", "franzosisch", "francese",
           "francês", "frans", "francusk", "французск", "フランス語", "法语", "法文"),
    "de": ("german", "alemán", "aleman", "allemand", "deutsch", "tedesco", "alemão", "alemao", "duits", "niemieck",
           "немецк", "ドイツ語", "德语", "德文"),
    "it": ("italian", "italien", "italiaans", "włosk", "итальянск", "イタリア語", "意大利语"),
    "pt": ("portugu", "portoghese", "portugais", "portugiesisch", "portugees", "portugalsk", "португальск",
           "ポルトガル語", "葡萄牙语"),
    "ja": ("japanese", "japonés", "japones", "japonais", "japanisch", "giapponese", "japonês", "japans", "japońsk",
           "японск", "日本語", "日语", "日文"),
    "zh": ("chinese", "chino", "chinois", "chinesisch", "cinese", "chinês", "chinees", "chińsk", "китайск",
           "中国語", "中文", "汉语", "漢語"),
    "ru": ("russian", "ruso", "russe", "russisch", "russo", "rosyjsk", "русск", "ロシア語", "俄语"),
    "nl": ("dutch", "holandés", "neerlandés", "néerlandais", "niederländisch", "olandese", "holandês", "nederlands",
           "niderlandzk", "holendersk", "голландск", "нидерландск", "オランダ語", "荷兰语"),
    "pl": ("polish", "polaco", "polonais", "polnisch", "polacco", "polonês", "pools", "polsk", "польск",
           "ポーランド語", "波兰语"),
}
_LANGUAGE_NAMES = re.compile("|".join(
    f"(?P<{code}>" + "|".join(re.escape(s) if s[0] >= "\u2e80" else r"(?<!\w)" + re.escape(s) + r"\w*"  # CJK: as is
                              for s in stems) + ")"
    for code, stems in _LANGUAGE_STEMS.items()))
_ANTONYM_PAIRS = """
raise lower|increase decrease|increase reduce|rise fall|high low|higher lower|highest lowest|up down|gain lose
best worst|good bad|better worse|advantage disadvantage|pro con|positive negative|hot cold|warm cool|large small
big small|largest smallest|biggest smallest|max min|maximum minimum|most least|more less|more fewer|before after
first last|start stop|begin end|open close|buy sell|import export|input output|add remove|enable disable
install uninstall|encrypt decrypt|compress decompress|encode decode|upload download|login logout|win lose
true false|safe dangerous|healthy unhealthy|cheap expensive|fast slow|faster slower|easy hard|easy difficult
easiest hardest|light heavy|light dark|strong weak|young old|new old|early late|long short|longest shortest
above below|over under|inside outside|internal external|left right|north south|east west|male female
men women|man woman|boy girl|husband wife|love hate|like dislike|accept reject|allow deny|include exclude
legal illegal|possible impossible|agree disagree|asleep awake|sleep wake|day night|summer winter
morning evening|rich poor|client server|send receive|read write|ascending descending|attract repel
cause prevent|similar different|same different|upper lower|uppercase lowercase|inhale exhale|arrive depart
entry exit|add subtract|multiply divide|plus minus|mean median|push pull|import export|success failure
win loss|profit loss|asset liability|debit credit|synchronous asynchronous|sync async|static dynamic
public private|absolute relative|inner outer|horizontal vertical|row column|min max|lowest highest
cheapest most|smallest largest|hottest coldest|warmest coolest|cheapest priciest|vegan carnivore|introvert extravert|introvert extrovert|dog cat|tea coffee
""".replace("\n", "|")
_UNITS = frozenset({
    "km", "kilometer", "kilometre", "mile", "meter", "metre", "cm", "mm", "inch", "foot", "feet", "yard", "kg",
    "kilogram", "gram", "g", "lb", "pound", "ounce", "oz", "celsius", "fahrenheit", "kelvin", "liter", "litre",
    "gallon", "ml", "cup", "usd", "eur", "gbp", "jpy", "inr", "dollar", "euro", "yen", "rupee", "byte", "kb",
    "mb", "gb", "tb", "bit", "hour", "minute", "second", "day", "week", "month", "year", "mph", "kph", "acre",
    "hectare", "calorie", "joule", "watt", "kwh", "english", "french", "german", "spanish", "italian",
    "portuguese", "chinese", "japanese", "korean", "russian", "arabic", "hindi", "dutch", "polish", "turkish",
})
_COMMON_EXTRA = frozenset({"delete", "deleted", "website", "online", "email", "app", "apps", "smartphone"})
_TARGET_MARKERS = frozenset({"to", "into", "many", "much", "in"})
_STOP = frozenset("""
a an the and or but if of in on at to for from by with about as into like through over after before
between under again further then once here there when where why how what which who whom whose this that
these those am is are was were be been being have has had having do does did doing would should could
can will shall may might must i me my myself we our ours you your yours he him his she her it its they
them their what's how's who's is it i'm i've you're it's there's whats hows some any each every all both
few other such only own so than too very just s t d ll m o re ve y get got getting make made one ones
way ways thing things also really much many please tell know want need use using used best good
""".split())


RULES: tuple[str, ...] = ("numbers", "negation", "antonym", "units", "direction", "specific", "order")
# families only named on purpose (cache.multilingual.veto): not part of `rules` / `both` mode's RULES
EXTRA_RULES: tuple[str, ...] = ("digits", "languages")
# the families behind the `rules_ok` signal (the learned verifier's input; fixed when it was trained)
_SIGNAL_RULES: tuple[str, ...] = ("numbers", "negation", "antonym", "units", "direction", "specific")
_RELATIONS = frozenset({"to", "into", "from", "than", "vs", "versus", "before", "after", "over"})
_QUESTION_WORDS = frozenset({"what", "why", "how", "when", "where", "who", "which", "whom", "whose"})


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True, slots=True)
class Signals:
    """Graded versions of the rules for one pair (symmetric in the two texts)."""

    jaccard: float  # token-set Jaccard of the stemmed words
    content_jaccard: float  # the same without stop words, negations and numbers
    numbers_differ: bool
    numbers_only_one: int  # numbers (with multiplicity) present in only one text
    negation_differs: bool
    antonym: bool
    units_differ: bool
    specific: int  # differing name/identifier-like content words (rules' "specific" tokens)
    capitalised: int  # differing content words capitalised mid-sentence or all-caps
    rare: int  # differing content words outside the common vocabulary (0 without one)
    only_content: int  # content words present in only one text
    substitution: bool  # both texts have a content word the other lacks
    length_ratio: float  # shorter / longer, in tokens
    question_word_differs: bool  # the sets of wh-words differ
    first_question_word_differs: bool
    swapped: bool  # the words around a relation word trade places (direction rule)
    char_jaccard: float  # Jaccard of character bigrams (any script: the word rules only read Latin letters)
    latin: float  # the smaller share of ASCII letters of the two texts (low = the word rules see little)
    rules_ok: bool  # the rule verifier would accept the pair


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    # "" when ok; else numbers | negation | antonym:<a>/<b> | units | direction | order | specific:<token>
    reason: str


def _stem(w: str) -> str:
    w = w.lower().removesuffix("'s").strip("'")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _pairs() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for pair in _ANTONYM_PAIRS.split("|"):
        words = pair.split()
        if len(words) == 2:
            a, b = (_stem(w) for w in words)
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in out.items()}


_ANTONYMS = _pairs()
_UNITS_STEMMED = frozenset(_stem(u) for u in _UNITS)
_NEG_PREFIXES = ("non-", "non", "dis", "un", "in", "im", "il", "ir")


def _affix_negated(w: str, others: set[str]) -> str | None:
    """The word of `others` that `w` negates with a prefix or the -less/-ful suffix (or that negates `w`), else
    None. A prefixed base word must have 4+ letters ("in" + "form" counts; "a" + "broad" is not tried)."""
    for p in _NEG_PREFIXES:
        if w.startswith(p) and len(w) - len(p) >= 4 and w[len(p):] in others:
            return w[len(p):]
    if w.endswith("less") and len(w) >= 7 and (w[:-4] + "ful" in others or w[:-4] in others):
        return w[:-4] + "ful" if w[:-4] + "ful" in others else w[:-4]
    return None


@dataclass(frozen=True, slots=True)
class _Parsed:
    words: tuple[str, ...]  # stemmed, lower-case, in order
    raw: tuple[str, ...]  # as written
    capital: tuple[bool, ...]  # capitalised and not at the start of a sentence
    numbers: Counter[float]
    negated: bool
    negations: int  # negation words (a negated text has at least one)
    targets: frozenset[str]  # units/languages converted to: "... to km", "how many km ..."
    relations: frozenset[tuple[str, str, str]]  # (word before, relation, word after) for each relation word
    grams: frozenset[str]  # character bigrams of the letters and digits (any script), lower-case
    latin: float  # share of the letters that are ASCII A-Z/a-z (1.0 without letters)
    digits: Counter[str]  # runs of digits anywhere (any script, NFKC: full-width digits fold), "M31" -> "31"
    languages: Counter[str]  # languages named (ISO codes), in English or one of the spaces' languages


def _number(tok: str) -> float | None:
    t = tok.lower()
    if t[0].isdigit():
        t = re.sub(r"(st|nd|rd|th)$", "", t).replace(",", "")
        try:
            return float(t)
        except ValueError:
            return None
    return _NUM_WORDS.get(t)


def _parse(text: str) -> _Parsed:
    text = text.replace("\u2019", "'")  # a typographic apostrophe: "isn’t" is one word, as "isn't"
    raw: list[str] = []
    capital: list[bool] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        before = text[: m.start()].rstrip()
        starts_sentence = not before or before[-1] in ".?!:;\"'(\n"
        raw.append(tok)
        capital.append(tok[0].isupper() and not starts_sentence)
    words = tuple(_stem(t) for t in raw)
    numbers: Counter[float] = Counter(n for n in map(_number, raw) if n is not None)
    lower = text.lower()
    negations = (sum(w in _NEGATIONS or w.endswith("n't") for w in words)
                 + sum(w in _NEGATIONS_CYRILLIC for w in _CYRILLIC_WORD.findall(lower))
                 + sum(w in _NEGATIONS_ACCENTED for w in _ACCENTED_WORD.findall(lower))
                 + len(_NEGATIONS_CJK.findall(text)))
    targets = frozenset(w for prev, w in zip(("",) + words, words, strict=False)
                        if prev in _TARGET_MARKERS and w in _UNITS)
    rel = frozenset(r for i, w in enumerate(words) if w in _RELATIONS for r in [_around(words, i)] if r)
    chars = [c for c in text.lower() if c.isalnum()]
    grams = frozenset(a + b for a, b in zip(chars, chars[1:], strict=False))
    letters = [c for c in text if c.isalpha()]
    latin = sum(c.isascii() for c in letters) / len(letters) if letters else 1.0
    digits = Counter(_DIGITS.findall(unicodedata.normalize("NFKC", text)))
    languages = Counter(m.lastgroup for m in _LANGUAGE_NAMES.finditer(lower) if m.lastgroup)
    return _Parsed(words, tuple(raw), tuple(capital), numbers, negations > 0, negations, targets, rel, grams, latin,
                   digits, languages)


def _around(words: tuple[str, ...], i: int, reach: int = 3) -> tuple[str, str, str] | None:
    """(nearest content word before, relation, nearest content word after) within `reach` words."""
    before = next((w for w in reversed(words[max(0, i - reach):i]) if w not in _STOP), None)
    after = next((w for w in words[i + 1:i + 1 + reach] if w not in _STOP), None)
    if before is None or after is None or before == after:
        return None
    return before, words[i], after


def _unit_swapped(a: _Parsed, b: _Parsed) -> bool:
    """One text has a unit (or language) word more often than the other, and the other has a different one
    more often: "how many minutes in a day" vs "how many hours in a day", "a 100 kg and a 50 kg person" vs
    "a 100 pound and a 50 kg person" (counted, so a unit that stays elsewhere in the text does not hide it)."""
    ca = Counter(w for w in a.words if w in _UNITS_STEMMED)
    cb = Counter(w for w in b.words if w in _UNITS_STEMMED)
    return bool(ca - cb) and bool(cb - ca)


_ORDER_KEEP = frozenset("""
to from into onto of for by with without per vs versus within toward towards through than before after over under
""".split())


def _content_order(p: _Parsed) -> list[str]:
    """The words that carry what is asked, in order: content words, numbers and relation words."""
    return [w for w in p.words if w not in _STOP or w in _ORDER_KEEP]


def _rotation(x: list[str], y: list[str]) -> bool:
    """Whether y is x with a run of words moved from one end to the other (x itself included)."""
    return len(x) == len(y) and ("\x00" + "\x00".join(y) + "\x00") in ("\x00" + "\x00".join(x + x) + "\x00")


def _written_order(p: _Parsed) -> list[str]:
    """`_content_order` as written (lower-case, not stemmed): "http" and "https" stem alike."""
    return [r.lower() for r, w in zip(p.raw, p.words, strict=True) if w not in _STOP or w in _ORDER_KEEP]


def _reordered(a: _Parsed, b: _Parsed) -> bool:
    """Same content words (as a multiset), another order, and not one phrase moved to the other end ("for kids,
    what ..." vs "what ... for kids" is a move; "from a to b" vs "to a from b" is not). Compared stemmed and as
    written: two words with one stem trading places ("http to https" vs "https to http") are another order too."""
    for x, y in ((_content_order(a), _content_order(b)), (_written_order(a), _written_order(b))):
        if x != y and Counter(x) == Counter(y) and not _rotation(x, y):
            return True
    return False


def _swapped(a: _Parsed, b: _Parsed) -> bool:
    return any((y, r, x) in b.relations and (x, r, y) not in b.relations for x, r, y in a.relations)


def vocabulary_words(tokenizer_json: str | Path) -> frozenset[str]:
    """Whole words of a WordPiece `tokenizer.json` (lower-case, alphabetic): the 'common' words."""
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    vocab = (data.get("model") or {}).get("vocab") or {}
    return frozenset(w for w in vocab if w.isalpha() and w.islower() and len(w) > 1)


class Verifier:
    """Rule-based near-miss rejection. `common_words`: lower-case words that are never 'specific'."""

    def __init__(self, common_words: frozenset[str] | None = None) -> None:
        self._common = common_words
        # a lookup checks its prompt against each candidate several times (screening, then judging): each text
        # is parsed once (a 4,000-character prompt takes ~5 ms). Read-only results; thread-safe in CPython
        self._parse = functools.lru_cache(maxsize=PARSE_MEMO)(_parse)

    @property
    def common_words(self) -> frozenset[str] | None:
        """The vocabulary of common words (None without one)."""
        return self._common

    @classmethod
    def from_tokenizer(cls, path: str | Path | None) -> Verifier:
        """With the encoder's vocabulary when the file exists, else capitalisation/digit rules only."""
        if path and Path(path).is_file():
            return cls(vocabulary_words(path))
        return cls()

    def check(self, query: str, cached: str, rules: Collection[str] = RULES) -> Verdict:
        """Accept or reject serving `cached`'s answer to `query`; `rules`: which rule families apply."""
        return self._check(self._parse(query), self._parse(cached), rules)

    def signals(self, query: str, cached: str) -> Signals:
        """Graded pair signals (the rules' inputs as numbers) for the learned verifier; symmetric."""
        return self._signals(self._parse(query), self._parse(cached))

    def signals_many(self, query: str, cached: Sequence[str]) -> list[Signals]:
        """`signals(query, c)` for each c, parsing the query once."""
        a = self._parse(query)
        return [self._signals(a, self._parse(c)) for c in cached]

    def _signals(self, a: _Parsed, b: _Parsed) -> Signals:
        sa, sb = set(a.words), set(b.words)
        ca, cb = self._content(sa), self._content(sb)
        only_a, only_b = self._content(sa - sb), self._content(sb - sa)
        spec = len(set(self._specific(a, only_a))) + len(set(self._specific(b, only_b)))
        caps = sum(1 for p, only in ((a, only_a), (b, only_b))
                   for r, w, c in zip(p.raw, p.words, p.capital, strict=True) if w in only and (c or r.isupper()))
        rare = 0
        if self._common is not None:
            rare = sum(1 for p, only in ((a, only_a), (b, only_b)) for r, w in zip(p.raw, p.words, strict=True)
                       if w in only and r.lower() not in self._common and w not in _COMMON_EXTRA)
        antonym = any(o in sb and o not in sa for w in sa - sb for o in _ANTONYMS.get(w, ()))
        qa = [w for w in a.words if w in _QUESTION_WORDS]
        qb = [w for w in b.words if w in _QUESTION_WORDS]
        return Signals(
            jaccard=_jaccard(sa, sb), content_jaccard=_jaccard(ca, cb),
            numbers_differ=a.numbers != b.numbers,
            numbers_only_one=sum(((a.numbers - b.numbers) + (b.numbers - a.numbers)).values()),
            negation_differs=a.negated != b.negated, antonym=antonym,
            units_differ=bool(a.targets and b.targets and a.targets != b.targets),
            specific=spec, capitalised=caps, rare=rare, only_content=len(only_a) + len(only_b),
            substitution=bool(only_a and only_b),
            length_ratio=min(len(a.words), len(b.words)) / max(len(a.words), len(b.words), 1),
            question_word_differs=set(qa) != set(qb),
            first_question_word_differs=(qa[:1] != qb[:1]),
            swapped=_swapped(a, b) or _swapped(b, a),
            char_jaccard=_jaccard(set(a.grams), set(b.grams)), latin=min(a.latin, b.latin),
            rules_ok=self._check(a, b, _SIGNAL_RULES).ok,
        )

    def _check(self, a: _Parsed, b: _Parsed, rules: Collection[str] = RULES) -> Verdict:
        if "numbers" in rules and a.numbers != b.numbers:
            return Verdict(False, "numbers")
        if "digits" in rules and a.digits != b.digits:
            return Verdict(False, "digits")
        if "languages" in rules and a.languages and b.languages and a.languages != b.languages:
            return Verdict(False, "languages")
        if "negation" in rules and a.negations != b.negations:
            return Verdict(False, "negation")
        sa, sb = set(a.words), set(b.words)
        if "antonym" in rules:
            for w in sa - sb:
                for opposite in _ANTONYMS.get(w, ()):
                    if opposite in sb and opposite not in sa:
                        return Verdict(False, f"antonym:{w}/{opposite}")
            for w, others in ((w, sb - sa) for w in sa - sb):
                if (base := _affix_negated(w, others)) is not None:
                    return Verdict(False, f"antonym:{w}/{base}")
            for w, others in ((w, sa - sb) for w in sb - sa):
                if (base := _affix_negated(w, others)) is not None:
                    return Verdict(False, f"antonym:{w}/{base}")
        if "units" in rules and (a.targets and b.targets and a.targets != b.targets or _unit_swapped(a, b)):
            return Verdict(False, "units")
        if "direction" in rules and (_swapped(a, b) or _swapped(b, a)):
            return Verdict(False, "direction")
        if "order" in rules and _reordered(a, b):
            return Verdict(False, "order")
        only_a = self._content(sa - sb)
        only_b = self._content(sb - sa)
        if "specific" in rules and only_a and only_b:
            for tok in (*self._specific(a, only_a), *self._specific(b, only_b)):
                return Verdict(False, f"specific:{tok}")
        return Verdict(True, "")

    @staticmethod
    def _content(words: set[str]) -> set[str]:
        return {w for w in words if w not in _STOP and w not in _NEGATIONS and _number(w) is None}

    def _specific(self, p: _Parsed, only: set[str]) -> list[str]:
        out = []
        for i, (r, w) in enumerate(zip(p.raw, p.words, strict=True)):
            if w not in only:
                continue
            if any(c.isdigit() or c in "+#._-" for c in r):
                out.append(w)
            elif p.capital[i]:
                out.append(w)
            elif r.isupper() and len(r) > 1:
                out.append(w)
            elif self._common is not None and r.lower() not in self._common and w not in _COMMON_EXTRA:
                out.append(w)
        return out


def verify(query: str, cached: str) -> Verdict:
    """`Verifier().check` without a vocabulary."""
    return Verifier().check(query, cached)
