"""When a name the PERSON head found makes a prompt carry personal data (pure functions, linear in the text).

A name alone is often not personal data about anyone: "write a story about a knight called Bram", "who was
Ada Lovelace?", "¿Cuál es la capital...?" (a Spanish word the English-trained head reads as a name). A name
*is* personal data when the text ties it to a person's life: contact details, an address, an id or a date
of birth in the same text, or a cue right next to it. This module decides which, as a policy the operator
sees in the config:

- `signals.pii.person_requires_context` (default true): a PERSON counts only with personal context (below);
  false: every PERSON the head finds counts (the behaviour before this policy).
- `signals.pii.person_full_names` (default true): with the policy on, a first name followed by a surname from
  the census name lists (names.py: "Dana Whitfield", not "Grant Park") is evidence too, without a cue. Only in a
  language the head is trusted on.
- `signals.pii.person_model` (default true): with the policy on, in a language the head is trusted on, a name
  the learned span check accepts counts too, and the census rule of `person_full_names` is replaced by it
  (person_model.py: a small model, a logistic and one hidden layer, over the encoder's token states of the name,
  its left and right neighbours and the whole text, with the head's probabilities, casing, the cue and the census
  evidence as features, trained to tell names in presidio-style documents
  from story characters, personas and public figures in chat prompts). Other languages keep rules 1-4.
- `signals.pii.head_languages` (default [en]): languages the head is trusted on. In any other detected
  language a PERSON needs personal context whatever `person_requires_context` says, and a STREET_ADDRESS
  needs a street word ("calle", "rua", "Hauptstraße"), not just a capitalised word next to a number.

Personal context for a name at [start, end):
1. another personal entity anywhere in the text (e-mail, phone, card, SSN, IBAN, IP, street address, date of
   birth): the name belongs to a record;
2. a cue in the same line just before it: a courtesy title (Mr, Dr, Frau, Sr., Mme, ...), "my name is",
   "I'm", "her name is", "my partner's name", a relation ("my colleague", "her son", "our tenant", "patient"), a salutation opening a line
   ("Dear", "Hi", "To:", "Attn:"), a message addressed to the name ("a thank-you note to", "an e-mail for"),
   or an action on someone one knows ("tell", "ask", "remind", "invite", "pay", "meeting with");
3. a cue just after it: a possessive with a personal attribute ("Ana's phone", "Bo's address"), "was born",
   "lives at/in", "works at/for", an age ("(34)", ", 52,", "52 years old", "aged 40"), "is my <relation>", or
   "as a beneficiary / guarantor / emergency contact";
4. a signature: the name opens a line right after a closing line ("Regards,", "Thanks,", "Sincerely,").

Public figures: a famous name in a question ("what did Marie Curie discover?") has no personal context and
does not count; neither does an invented character in a story request. A famous name next to a relation
or contact details counts like any other: the router cannot know who is famous, and does not try.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from semrouter.signals.pii.names import NameGazetteer
from semrouter.signals.pii.spans import street_word
from semrouter.signals.types import PIIEntity

_BACK = 40
_FWD = 40

_TITLES = (r"mr|mrs|ms|miss|mx|dr|prof|professor|sir|madam|dame|rev|reverend|fr|sr|sra|srta|herr|"
           r"frau|mme|mlle|monsieur|madame|dott|sig|signor|signora|pan|pani|mevrouw|meneer|dhr|mevr|senhor|senhora")
_RELATIONS = (r"wife|husband|spouse|partner|son|daughter|child|kid|mother|father|mom|mum|dad|sister|brother|"
              r"sibling|grandmother|grandfather|grandma|grandpa|granny|aunt|uncle|cousin|niece|nephew|fianc[eé]e?|"
              r"boyfriend|girlfriend|friend|roommate|flatmate|housemate|neighbou?r|colleague|coworker|co-worker|"
              r"boss|manager|supervisor|employee|assistant|intern|client|customer|patient|tenant|landlord|"
              r"landlady|lawyer|attorney|accountant|doctor|therapist|nurse|teacher|student|classmate|ex|"
              r"stepmother|stepfather|stepson|stepdaughter|in-law|caregiver|babysitter|nanny|mentor|mentee")

_BEFORE = re.compile(
    rf"(?:\b(?:{_TITLES})\.?|"
    r"\b(?:my|our|his|her|their|your)\s+(?:\w+['’]s\s+)?(?:full\s+|legal\s+|real\s+|maiden\s+)?name"
    r"(?:\s+is|\s+was|['’]s|\s*:)?|\bi\s+am|\bi'm|\bi’m|\bthis\s+is|\bcall\s+me|\bsigned|\bnamed?:|"
    rf"\b(?:my|our|his|her|their|your)\s+(?:\w+\s+)?(?:{_RELATIONS})s?,?|"
    rf"\b(?:patient|employee|applicant|candidate|cardholder|account\s+holder|policyholder|tenant|customer|client|"
    r"student|resident|member|user|recipient|sender|beneficiary|claimant|defendant|plaintiff|insured)\s*(?:name)?\s*:?|"
    r"\b(?:e-?mail|letter|note|message|text|reply|invitation|invite|card|memo|apology|toast|eulogy|speech|"
    r"thank-you|birthday\s+wish(?:es)?)\s+(?:\w+\s+){0,2}(?:to|for)|"
    r"\b(?:tell|ask|remind|invite|call|phone|ring|email|e-mail|ping|message|thank|congratulate|cc|introduce|"
    r"pay|reimburse|hire|fire|promote|schedule\s+(?:a\s+)?(?:call|meeting)\s+with|meet(?:ing)?\s+with)|"
    r"^\s*(?:dear|hi|hello|hey|to|from|cc|bcc|attn|attention|c/o)\b[\s:,]*(?:\w+\.?\s+)?)"
    r"\s*$",
    re.IGNORECASE,
)
_AFTER = re.compile(
    r"(?:['’]s?\s+(?:\w+\s+)?(?:phone|mobile|cell|number|address|email|e-mail|birthday|date\s+of\s+birth|"
    r"dob|ssn|social\s+security|passport|licen[cs]e|salary|account|card|bank|iban|diagnosis|medical|"
    r"health|records?|home|house|flat|apartment|pay|payslip|contract|id)\b|"
    r"[\s,]+(?:was|is|were)\s+born\b|[\s,]+(?:lives|lived|resides|resided|living)\b|"
    r"[\s,]+(?:works|worked|working)\s+(?:at|for|in)\b|"
    r"\s+as\s+(?:a|an|the|my|our)\s+(?:beneficiary|co-?signer|guarantor|reference|emergency\s+contact|next\s+of\s+kin|"
    r"authori[sz]ed\s+user|dependa?ent|joint\s+(?:account\s+)?holder)\b|"
    r"\s*\(\s*\d{1,3}\s*\)|\s*,\s*\d{1,3}\s*,|[\s,]+(?:aged?\s*:?\s*\d{1,3}|\d{1,3}\s*(?:years?|yrs?|y/o)\s*old)\b|"
    rf"[\s,]+(?:is|was)\s+(?:my|our|his|her|their)\s+(?:\w+\s+)?(?:{_RELATIONS})\b)",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"(?:regards|sincerely|thanks|thank\s+you|cheers|best|best\s+wishes|warmly|yours(?:\s+truly)?|"
    r"respectfully|cordially|love|xoxo|signed)\s*[,.!]?\s*$",
    re.IGNORECASE,
)


def has_personal_cue(text: str, start: int, end: int) -> bool:
    """True when words next to the name [start, end) tie it to a person (rules 2-4 of the module docstring).

    Reads at most `_BACK` characters before (in the name's line) and `_FWD` after: O(1) per name.
    """
    line_start = text.rfind("\n", max(0, start - _BACK), start) + 1
    before = text[max(line_start, start - _BACK) : start]
    if _BEFORE.search(before):
        return True
    if _AFTER.match(text, end, min(len(text), end + _FWD)):
        return True
    if line_start > 0 and not before.strip():  # the name opens its line: a signature after a closing?
        prev_end = line_start - 1
        prev_start = text.rfind("\n", max(0, prev_end - _BACK), prev_end) + 1
        prev = text[max(prev_start, prev_end - _BACK) : prev_end]
        if _CLOSING.search(prev) and (prev_start > 0 or prev_end - _BACK <= 0):
            return True
    return False


def trusted_language(language: str | None, languages: Sequence[str]) -> bool:
    """Whether the head may be believed on a text in `language` (None or "und": not known, believed)."""
    return language is None or language == "und" or language in languages


def person_counts(
    text: str,
    found: Sequence[PIIEntity],
    language: str | None,
    requires_context: bool,
    languages: Sequence[str],
    gazetteer: NameGazetteer | None = None,
    learned: Callable[[PIIEntity], bool] | None = None,
) -> list[PIIEntity]:
    """`found` without the learned entities that lack evidence under the policy (module docstring).

    PERSON needs personal context when `requires_context` is set or `language` (ISO 639-1 from the language
    signal) is not in `languages`; in such a language a STREET_ADDRESS also needs a street word. With
    `gazetteer` (the `person_full_names` policy), a listed first name + surname is evidence in a trusted
    language. With `learned` (the `person_model` policy: the span check of person_model.py, which reads the
    census evidence as a feature), in a trusted language it replaces the census rule: a name counts with a cue
    word or when the check accepts it. Other types pass unchanged.
    """
    trusted = trusted_language(language, languages)
    if not trusted:
        found = [e for e in found if e.type != "STREET_ADDRESS" or street_word(e.value)]
    if (trusted and not requires_context) or not any(e.type == "PERSON" for e in found):
        return list(found)
    if any(e.type != "PERSON" for e in found):  # rule 1: the names sit in a record with other personal data
        return list(found)
    if trusted and learned is not None:  # the span check reads the census evidence as one of its features
        return [e for e in found if e.type != "PERSON" or has_personal_cue(text, e.start, e.end) or learned(e)]
    cased = text != text.lower()
    return [e for e in found if e.type != "PERSON" or has_personal_cue(text, e.start, e.end)
            or (trusted and gazetteer is not None and gazetteer.full_name(e.value, cased))]
