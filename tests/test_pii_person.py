"""The PERSON policy (signals/pii/person.py): which names make a prompt carry personal data.

Pure-function tests on hand-written texts (not from any data set); the spans stand in for what the head finds,
so each case tests the policy alone. tests/test_pii_detector.py runs the same policy behind the real head.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from semrouter.signals.pii import PIIConfig
from semrouter.signals.pii.person import has_personal_cue, person_counts
from semrouter.signals.types import PIIEntity


def names(text: str, *values: str) -> list[PIIEntity]:
    out = []
    for v in values:
        i = text.index(v)
        out.append(PIIEntity("PERSON", i, i + len(v), v, 0.9))
    return out


def kept(text: str, *values: str, language: str | None = "en", requires: bool = True,
         extra: tuple[PIIEntity, ...] = ()) -> list[str]:
    found = sorted([*names(text, *values), *extra], key=lambda e: e.start)
    return [e.value for e in person_counts(text, found, language, requires, ("en",)) if e.type == "PERSON"]


@pytest.mark.parametrize(("text", "name"), [
    # invented characters in story and role-play requests
    ("Write a bedtime story about a lighthouse keeper named Orrin Vale who befriends a seal.", "Orrin Vale"),
    ("Continue the scene: Captain Mirela Dusk steps onto the bridge and scans the void.", "Mirela Dusk"),
    ("In my novel draft, Tamsin Reed discovers the letters in the attic. Suggest a twist.", "Tamsin Reed"),
    # public figures named in questions
    ("What did Grace Hopper contribute to early compilers?", "Grace Hopper"),
    ("Summarise the main arguments of Hannah Arendt about the banality of evil.", "Hannah Arendt"),
    ("Compare the batting styles of Sachin Tendulkar and Brian Lara.", "Sachin Tendulkar"),
])
def test_a_lone_name_without_personal_context_does_not_count(text: str, name: str) -> None:
    assert kept(text, name) == []
    assert kept(text, name, requires=False) == [name]  # the operator can switch the policy off


@pytest.mark.parametrize(("text", "name"), [
    ("My colleague Tobias Brandt keeps missing the stand-up; how do I raise it kindly?", "Tobias Brandt"),
    ("Dear Mrs. Okafor,\nthank you for the quick reply.", "Okafor"),
    ("Please draft a reply to Ines Cardoso about the late invoice.", "Ines Cardoso"),
    ("Remind Jarek Nowicki that the rent is due on Friday.", "Jarek Nowicki"),
    ("Lena Fischer was born in Graz and now teaches physics.", "Lena Fischer"),
    ("Jonas Weber, 42, asked for an extension of his contract.", "Jonas Weber"),
    ("The patient Amara Nwosu reports chest pain since Tuesday.", "Amara Nwosu"),
    ("Ravi Menon's home address changed last month; update the form.", "Ravi Menon"),
    ("See you soon.\nThanks,\nPriya Raman", "Priya Raman"),
    ("Hi Sofía, can you send me the slides?", "Sofía"),
    ("My name is Kwame Boateng and I need help with my visa letter.", "Kwame Boateng"),
    ("The lease is under my sister's name Odile Marchetti; can she sublet?", "Odile Marchetti"),
    ("Please list Bruno Takeda as a beneficiary on the savings plan.", "Bruno Takeda"),
])
def test_a_name_tied_to_a_person_counts(text: str, name: str) -> None:
    assert kept(text, name) == [name]
    assert has_personal_cue(text, text.index(name), text.index(name) + len(name))


def test_a_name_next_to_other_personal_data_counts() -> None:
    text = "Write a poem for Marta Oyelaran and text it to 415-555-0172."
    phone = PIIEntity("PHONE_NUMBER", text.index("415"), text.index("415") + 12, "415-555-0172")
    assert kept(text, "Marta Oyelaran", extra=(phone,)) == ["Marta Oyelaran"]


def test_the_head_is_trusted_only_on_its_languages() -> None:
    # Spanish words the English-trained head may read as a name: dropped even with the policy off
    text = "¿Cuál es la mejor manera de aprender Python en Madrid?"
    assert kept(text, "Cuál", language="es", requires=False) == []
    # in a trusted or unknown language the policy switch decides
    assert kept(text, "Cuál", language="en", requires=False) == ["Cuál"]
    assert kept(text, "Cuál", language="und", requires=False) == ["Cuál"]
    assert kept(text, "Cuál", language=None, requires=False) == ["Cuál"]
    # a name with a title in another language still counts there
    text = "Por favor, escribe a la Sra. Lucía Herrera sobre la factura."
    assert kept(text, "Lucía Herrera", language="es", requires=False) == ["Lucía Herrera"]


def test_addresses_in_other_languages_need_a_street_word() -> None:
    text = "Ele chegou Cedo 12 vezes; a reunião é na Rua das Flores 45."
    loose = PIIEntity("STREET_ADDRESS", text.index("Cedo"), text.index("Cedo") + 7, "Cedo 12")
    street = PIIEntity("STREET_ADDRESS", text.index("Rua"), len(text) - 1, "Rua das Flores 45")
    assert person_counts(text, [loose, street], "pt", True, ("en",)) == [street]
    assert person_counts(text, [loose, street], "en", True, ("en",)) == [loose, street]
    text = "Treffpunkt ist die Kirchweg 7 in Ulm."
    kirchweg = PIIEntity("STREET_ADDRESS", text.index("Kirchweg"), text.index("Kirchweg") + 10, "Kirchweg 7")
    assert person_counts(text, [kirchweg], "de", True, ("en",)) == [kirchweg]


def test_other_types_are_never_dropped_by_the_person_policy() -> None:
    text = "Story idea: a detective and the number 536-22-1847."
    ssn = PIIEntity("US_SSN", 38, 49, "536-22-1847")
    assert person_counts(text, [ssn], "en", True, ("en",)) == [ssn]


def test_cue_windows_are_bounded() -> None:
    # a title far away in the same line does not vouch for a name 200 characters later
    text = "Mr. Ash said hello. " + "x " * 100 + "Then Orla Quinn arrived."
    i = text.index("Orla Quinn")
    assert not has_personal_cue(text, i, i + len("Orla Quinn"))


def test_head_languages_config_is_validated() -> None:
    assert PIIConfig(head_languages=("EN", "de")).head_languages == ("en", "de")
    with pytest.raises(ValidationError, match="head_languages"):
        PIIConfig(head_languages=("english",))
    assert PIIConfig().person_requires_context is True


def test_a_word_that_is_also_a_verb_is_not_a_cue() -> None:
    # "text" opens "the text files": not a message to someone
    text = "find all the text Files older than a week"
    assert kept(text, "Files") == []


@pytest.mark.parametrize("value", ["Question 86", "Verse 2", "Chorus 3", "6th century AD", "Scene 4"])
def test_labels_and_eras_next_to_a_number_are_not_addresses(value: str) -> None:
    from semrouter.signals.pii.context import TextContext
    from semrouter.signals.pii.spans import address_ok

    text = f"Please look at {value} again before Friday."
    i = text.index(value)
    assert not address_ok(TextContext(text), i, i + len(value))
    real = "Please look at 12 Baker Street again before Friday."
    assert address_ok(TextContext(real), real.index("12"), real.index("12") + len("12 Baker Street"))


def test_an_address_does_not_run_across_a_sentence_end() -> None:
    from semrouter.signals.pii.context import TextContext
    from semrouter.signals.pii.spans import address_ok

    text = "A rhombus has a side of 20. The Perimeter of the prism is 58."
    assert not address_ok(TextContext(text), text.index("side"), text.index("Perimeter") + 9)
    for text, value in (("Send it to 12 Elm St. Apt 4 by Monday.", "12 Elm St. Apt 4"),
                        ("Post goes to P.O. Box 77 in Leeds.", "P.O. Box 77"),
                        ("Visit ul. Lipowa 9 tomorrow.", "ul. Lipowa 9"),
                        ("Office: Rózsa u. 12. Suite 3, Pécs", "Rózsa u. 12. Suite 3")):
        i = text.index(value)
        assert address_ok(TextContext(text), i, i + len(value)), value
