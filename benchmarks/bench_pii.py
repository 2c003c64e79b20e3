"""PII detection quality per source and per type on public data, plus detect() latency.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_pii.py [--fp32] [--limit N] [--no-head] \
        [--any-person | --no-full-names | --no-person-model | --no-candidates] [--cache build/pii_cache]

With `--cache`, the head's output per text is kept under build/ and later runs only decode and apply the rules
(minutes -> seconds; the latency line then covers decoding and rules only).

Data (../shared/data, read here, never copied into the repo):
- `pii-dev.jsonl.gz`: presidio-research generated texts with typed spans, two origins
  (`presidio/generated_large`, `presidio/synth_dataset_v2`). Nothing of it is used to train the PERSON
  head (modelbuild/pii/datagen.py writes its own texts); pattern rules were tuned on `generated_large`
  only, so `synth_dataset_v2` is the held-out origin for them.
- `pii-clean-dev.jsonl.gz`: shell commands and tldr examples without personal data: any entity is a false
  positive (per origin: nl2bash, tldr).
- `jailbreak-dev.jsonl.gz` rows labelled `benign`: ordinary chat prompts (code, shell, role-play,
  tool-use, arena); "flagged" = at least one entity. Some of these prompts do name people (a letter to a
  named person); the table also says which types did the flagging.

Recall is "overlap": a gold span counts when a prediction of the same type overlaps it (exact-span recall is
printed beside it). Only the types the router detects are scored; gold spans of other types (LOCATION,
ORGANIZATION, ...) are ignored.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semrouter.signals.pii import ALL_TYPES, PIIConfig, PIIDetector, detect_patterns  # noqa: E402
from semrouter.signals.pii.encode import TokenEmbedder  # noqa: E402
from semrouter.signals.pii.head import PIIHead, decode_bio  # noqa: E402
from semrouter.signals.types import PIIEntity  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
STRUCTURED = [t for t in ALL_TYPES if t not in ("PERSON", "STREET_ADDRESS")]


def pct(a: float, b: float) -> str:
    return f"{100 * a / b:.1f}%" if b else "n/a"


def rows(name: str, limit: int | None = None) -> list[dict]:
    with gzip.open(DATA / name, "rt") as f:
        out = [json.loads(line) for line in f]
    return out[:limit] if limit else out


class _ProbsHead:
    """Stands in for the PIIHead when the head's probabilities come from the cache: `probs` is the identity."""

    def __init__(self, head: PIIHead) -> None:
        self.labels = head.labels

    def probs(self, x: np.ndarray) -> np.ndarray:
        return x

    def entities(self, text, probs, offsets, min_score):  # type: ignore[no-untyped-def]
        return decode_bio(text, probs, offsets, self.labels, min_score) if len(offsets) else []

    decode = entities


class Runner:
    """detect() on one text; with `cache`, the encoder + head output (label probabilities [T,K], offsets) and the
    language are kept on disk per text (build/, gitignored), so a re-run only re-decodes and re-applies the rules."""

    def __init__(self, detector: PIIDetector, embedder: TokenEmbedder | None, language=None,  # type: ignore[no-untyped-def]
                 cache: Path | None = None) -> None:
        self.detector, self.embedder, self.language = detector, embedder, language
        self.ms: list[float] = []
        self.cache = cache
        self._real_head = detector.head
        if cache is not None and detector.head is not None:
            cache.mkdir(parents=True, exist_ok=True)
            detector.head = _ProbsHead(detector.head)  # type: ignore[assignment]

    def _cached(self, text: str) -> tuple[np.ndarray | None, list | None, str | None]:  # type: ignore[type-arg]
        assert self.cache is not None and self._real_head is not None
        f = self.cache / (hashlib.sha256(text.encode()).hexdigest()[:32] + ".npz")
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            lang = str(z["lang"]) or None
            return z["probs"], [tuple(map(int, o)) for o in z["offsets"]], lang
        emb, offs = self.embedder.embed(text) if self.embedder is not None else (None, None)
        lang = self.language.detect(text) if self.language is not None else None
        probs = self._real_head.probs(emb) if emb is not None and len(offs) else np.zeros((0, len(self._real_head.labels)))
        np.savez(f, probs=probs, offsets=np.array(offs or [], dtype=np.int64).reshape(-1, 2), lang=np.array(lang or ""))
        return probs, offs, lang

    states: Path | None = None  # --states-cache: the encoder's token states per text (train_person.py's cache)

    def _cached_states(self, text: str) -> tuple[np.ndarray | None, list | None, str | None]:  # type: ignore[type-arg]
        assert self.states is not None
        f = self.states / (hashlib.sha256(text.encode()).hexdigest()[:32] + ".npz")
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            return z["emb"].astype(np.float32), [tuple(map(int, o)) for o in z["offsets"]], str(z["lang"]) or None
        emb, offs = self.embedder.embed(text) if self.embedder is not None else (None, None)
        lang = self.language.detect(text) if self.language is not None else None
        if emb is not None:
            np.savez(f, emb=emb.astype(np.float16), offsets=np.array(offs, dtype=np.int64).reshape(-1, 2),
                     lang=np.array(lang or ""))
        return emb, offs, lang

    def inputs(self, text: str) -> tuple[np.ndarray | None, list | None, str | None]:  # type: ignore[type-arg]
        """What detect() is given for `text`: token states (or the head's cached output), offsets, language."""
        if self.states is not None:
            return self._cached_states(text)
        if self.cache is not None and self._real_head is not None:
            return self._cached(text)
        emb, offs = self.embedder.embed(text) if self.embedder is not None else (None, None)
        return emb, offs, self.language.detect(text) if self.language is not None else None

    def __call__(self, text: str) -> list[PIIEntity]:
        emb, offs, lang = self.inputs(text)
        t0 = time.perf_counter()
        out = self.detector.detect(text, emb, offs, lang)
        self.ms.append((time.perf_counter() - t0) * 1000)
        return out


def recall_tables(run: Runner, data: list[dict]) -> None:
    by_origin: dict[str, list[dict]] = defaultdict(list)
    for r in data:
        by_origin[r["origin"]].append(r)
    for origin, rs in sorted(by_origin.items()):
        gold, exact, overlap, pred, pred_ok = Counter(), Counter(), Counter(), Counter(), Counter()
        for r in rs:
            found = run(r["text"])
            spans = [(e["start"], e["end"], e["type"]) for e in r["entities"]]
            # names in a record: the text also carries other personal data (gold), where a name is PII under
            # any PERSON policy (signals/pii/person.py rule 1)
            if any(t in ALL_TYPES and t != "PERSON" for _, _, t in spans):
                for s, e, t in spans:
                    if t == "PERSON":
                        gold["PERSON in records"] += 1
                        overlap["PERSON in records"] += any(p.type == t and p.start < e and s < p.end for p in found)
                        exact["PERSON in records"] += any((p.start, p.end, p.type) == (s, e, t) for p in found)
            for s, e, t in spans:
                if t not in ALL_TYPES:
                    continue
                gold[t] += 1
                exact[t] += any((p.start, p.end, p.type) == (s, e, t) for p in found)
                overlap[t] += any(p.type == t and p.start < e and s < p.end for p in found)
            for p in found:
                pred[p.type] += 1
                pred_ok[p.type] += any(t == p.type and p.start < e and s < p.end for s, e, t in spans)
        print(f"\n### pii-dev, origin `{origin}` ({len(rs)} texts)\n")
        print("| type | gold spans | recall (overlap) | recall (exact) | precision (overlap) |")
        print("|---|---:|---:|---:|---:|")
        for t in ALL_TYPES:
            print(f"| {t} | {gold[t]} | {pct(overlap[t], gold[t])} | {pct(exact[t], gold[t])} "
                  f"| {pct(pred_ok[t], pred[t])} |")
        t = "PERSON in records"
        print(f"| {t} (texts with other personal data) | {gold[t]} | {pct(overlap[t], gold[t])} "
              f"| {pct(exact[t], gold[t])} | |")
        g = sum(gold[t] for t in STRUCTURED)
        print(f"| structured, all | {g} | {pct(sum(overlap[t] for t in STRUCTURED), g)} "
              f"| {pct(sum(exact[t] for t in STRUCTURED), g)} "
              f"| {pct(sum(pred_ok[t] for t in STRUCTURED), sum(pred[t] for t in STRUCTURED))} |")


def flagged_table(run: Runner, title: str, data: list[dict]) -> None:
    by_origin: dict[str, list[dict]] = defaultdict(list)
    for r in data:
        by_origin[r["origin"]].append(r)
    print(f"\n### {title}: texts with any entity (false positives)\n")
    print("| origin | texts | flagged | flagged without PERSON | types that flagged |")
    print("|---|---:|---:|---:|---|")
    for origin, rs in sorted(by_origin.items()):
        n_any = n_structured = 0
        types: Counter[str] = Counter()
        for r in rs:
            found = run(r["text"])
            n_any += bool(found)
            n_structured += any(p.type != "PERSON" for p in found)
            types.update({p.type for p in found})
        print(f"| {origin} | {len(rs)} | {pct(n_any, len(rs))} | {pct(n_structured, len(rs))} "
              f"| {', '.join(f'{t} {c}' for t, c in types.most_common())} |")


# Running-text frames for phone numbers (written here; the numbers come from Faker's locales, not from us).
PHONE_FRAMES = (
    "Please call me at {} tomorrow.",
    "You can reach me on {} after six.",
    "My mobile is {}, text me when you land.",
    "Hi, it's Sam - ring {} if the parcel is late.",
    "Contact: {} (office)",
    "Is {} the right number for the landlord?",
)


# A second set, written by the sixth session after its phone rule changes (which were made reading misses of the
# frames above): these frames and seed 29 are the held-out check for those changes.
PHONE_FRAMES_HELD_OUT = (
    "Text the plumber on {} before noon.",
    "Her new mobile: {}",
    "I lost my phone, so use {} for now.",
    "Leave a voicemail at {} and I'll call back.",
    "The front desk number is {}.",
    "Landline {} rings in the kitchen.",
)


# A third set, written by the tenth session (pii11) after its phone-word changes (made reading misses of the second
# set) and before it was run: these frames and seed 37 are the held-out check for them.
PHONE_FRAMES_TENTH = (
    "If the alarm goes off, the night porter can be reached at {}.",
    "Send a WhatsApp to {} with the photos of the damage.",
    "Her work line is {} but she rarely picks up.",
    "Fax the signed form to {} by Friday.",
    "My cell: {}",
    "Please phone the clinic on {} to rebook.",
)


def phone_table(detect_phone, frames: tuple[str, ...] = PHONE_FRAMES, seed: int = 11) -> None:  # type: ignore[no-untyped-def]
    """Share of Faker phone numbers (8 locales x 6 frames x 50) found by our patterns and by `phonenumbers`."""
    from faker import Faker

    try:
        import phonenumbers
    except ImportError:
        phonenumbers = None
    print(f"\n### Phone numbers in running text (Faker numbers, seed {seed}, frames written here)\n")
    print("| locale | n | patterns | phonenumbers (region of the locale) | phonenumbers (region US) |")
    print("|---|---:|---:|---:|---:|")
    for loc in ("en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES", "nl_NL", "en_AU"):
        f = Faker(loc)
        f.seed_instance(seed)
        n = ours = lib_loc = lib_us = 0
        region = loc.split("_")[1].replace("GB", "GB")
        for i in range(300):
            phone = f.phone_number()
            text = frames[i % len(frames)].format(phone)
            s = text.index(phone)
            e = s + len(phone)
            n += 1
            ours += any(p.start < e and s < p.end for p in detect_phone(text))
            if phonenumbers is not None:
                lib_loc += any(m.start < e and s < m.end for m in phonenumbers.PhoneNumberMatcher(text, region))
                lib_us += any(m.start < e and s < m.end for m in phonenumbers.PhoneNumberMatcher(text, "US"))
        lib = (pct(lib_loc, n), pct(lib_us, n)) if phonenumbers is not None else ("not installed", "not installed")
        print(f"| {loc} | {n} | {pct(ours, n)} | {lib[0]} | {lib[1]} |")


# Hand-written hard cases for the PERSON policy (sixth session, written before measuring them; no data set).
# Kind -> (sentences, whether a PERSON should count).
HARD_CASES: dict[str, tuple[tuple[str, ...], bool]] = {
    "fictional characters and titles": ((
        "Why does Atticus Finch take the case in To Kill a Mockingbird?",
        "Compare Elizabeth Bennet and Emma Woodhouse as heroines.",
        "Is Jay Gatsby a tragic figure or a fraud?",
        "Write fan fiction where Hermione Granger opens a bakery.",
        "How old is Bilbo Baggins when he leaves the Shire?",
        "Explain the rivalry between Sherlock Holmes and James Moriarty.",
        "Summarise Anne of Green Gables for a ten-year-old.",
        "What does Holden Caulfield want in The Catcher in the Rye?",
        "Draw a comic strip starring Charlie Brown and Lucy van Pelt.",
        "Who would win, Luke Skywalker or Captain Kirk?",
    ), False),
    "capitalised words at a sentence start": ((
        "Grant the service account read access.", "Mark every stale branch for deletion.",
        "Will the cache survive a restart?", "May I ask why the build is slow?",
        "Bill the customer only after shipping.", "Rob Peter to pay Paul is an idiom; explain it.",
        "Chase the failing test before lunch.", "Drew a diagram, now label the axes.",
        "Carol singing starts at seven.", "Sue the landlord or negotiate first?",
    ), False),
    "places and brands": ((
        "Washington Square Park is crowded on Sundays.", "Is Jackson Hole worth a winter trip?",
        "Compare Ford Focus and Honda Civic running costs.", "Does Dell Technologies still sell netbooks?",
        "How tall is Mount Kennedy?", "Lincoln Center hosts the gala in May.",
        "Should I fly into Austin Bergstrom or Dallas Love Field?", "Is Tommy Hilfiger cheaper online?",
        "What time does Chelsea Market open?", "Review the Dyson Airwrap for curly hair.",
    ), False),
    "private people named in passing (should count)": ((
        "Can you check whether Dana Whitfield got the renewal I sent?",
        "Draft a note telling Kevin Marsh the shed is ready.",
        "I keep arguing with Brenda Kowalski about the rota.",
        "Summarise what Gloria Pennington said in yesterday's call.",
        "Is it rude that Derek Halvorsen never replies in the group chat?",
        "Rewrite this so Tanya Okafor understands the deadline.",
        "Should I lend Marcus Delgado my car for the weekend?",
        "Write a thank-you card for Linda Oyelowo who fed our cats.",
        "Howard Brennan keeps parking in my spot; what should I say?",
        "Plan a surprise party for Renee Castillo on Saturday.",
    ), True),
}

# Ninth session (pii10), written before the learned span check was measured on them; no data set.
HARD_CASES_NINTH: dict[str, tuple[tuple[str, ...], bool]] = {
    "invented characters in story requests": ((
        "Write a bedtime story about a fox named Pemberton Quill who fears the dark.",
        "Continue the tale: Captain Ysolde Marrow sails into the storm.",
        "Give me three plot twists for a mystery where Inspector Gideon Thrale is the killer.",
        "Describe the villain Morwen Ashgrave's castle in vivid detail.",
        "In my novel, Tobiah Renwick inherits a haunted bakery. What happens next?",
        "Write a dialogue between two robots, Kessa and Orrin, arguing about rain.",
        "Create a backstory for my D&D rogue, Lirael Thornwick.",
        "Write a limerick about a clumsy wizard called Barnaby Fizzlewick.",
        "Make up a sci-fi hero named Juno Castellan and describe her ship.",
        "Draft the opening scene where young Elspeth Marlow finds a map in the attic.",
    ), False),
    "public figures in questions": ((
        "What did Marie Curie discover about radioactivity?",
        "Why did Napoleon Bonaparte invade Russia in 1812?",
        "Summarise Abraham Lincoln's Gettysburg Address.",
        "How did Serena Williams change women's tennis?",
        "What was Albert Einstein's view on quantum mechanics?",
        "Compare the leadership styles of Winston Churchill and Franklin Roosevelt.",
        "Which paintings made Frida Kahlo famous?",
        "What is Barack Obama doing since leaving office?",
        "Explain Isaac Newton's three laws simply.",
        "Was Cleopatra Egyptian or Greek by descent?",
    ), False),
    "private people with a relation or in a complaint (should count)": ((
        "My landlord Tomasz Wierzbicki never returned the deposit; what can I do?",
        "My neighbour Priya Ramaswamy called about the fence again.",
        "Our babysitter Anouk Verbeek is leaving; write her a reference.",
        "Help me reply to Jolene Farrow, who says I owe her for the concert tickets.",
        "Yesterday Ifeoma Chukwu from accounts sent me the wrong payslip.",
        "Can you summarise the complaint Ruairi Brennan filed about my dog?",
        "I need to apologise to Svetlana Morozova for missing her birthday dinner.",
        "Remind me what Hector Villanueva said about the roof repair quote.",
        "Write a warm retirement message for Gwendolyn Okonkwo from the night shift.",
        "Is it weird that my ex, Dmitri Sokolov, still texts my mum?",
    ), True),
}


# Tenth session (pii11): written before any model of this session was run on them.
HARD_CASES_TENTH: dict[str, tuple[tuple[str, ...], bool]] = {
    "private people, one given name or an uncommon full name, no cue word (new, should count)": ((
        "Why does Priyanka keep booking the small meeting room for four hours?",
        "Should I tell HR that Oluwaseun shouted at the intern again?",
        "Can you reword this so Margarethe does not feel blamed for the delay?",
        "Is it normal that Thibault reads all the group chat messages but never answers?",
        "Draft a reply to Ingeborg Lindqvist saying the samples arrive Tuesday.",
        "I found out Kwabena Asante-Mensah applied for the same flat as me.",
        "Yusuf from the corner shop lent me his ladder; what is a nice way to thank him?",
        "Does it sound passive-aggressive if I write that Fenella missed the deadline twice?",
        "How do I split the electricity bill fairly with Radek and Zsofia?",
        "Help me write a reference letter for Anneliese Vogt, who babysat our twins for three years.",
    ), True),
    "capitalised words that are not people: products, headings, title-case phrases (new, should not count)": ((
        "Compare Google Sheets and Microsoft Excel for a small budget.",
        "Why does Visual Studio Code freeze when I open a Jupyter Notebook?",
        "Write a Terms Of Service Summary For A Small Bakery Website.",
        "Is Premier Inn or Travelodge better for a one-night stay?",
        "Explain the Monte Carlo method with a coin example.",
        "What does Black Friday mean for small online shops?",
        "Set up Windows Defender Firewall rules for a home server.",
        "Give me a Quick Start Guide for Raspberry Pi Zero.",
        "How does Apple Pay differ from Google Wallet?",
        "List three Easy Weeknight Dinners with Sweet Potato.",
    ), False),
    "fictional characters and titles in questions (new, should not count)": ((
        "Why does Ebenezer Scrooge change his mind at the end?",
        "Is Severus Snape a hero or a villain?",
        "What is the moral of Jonathan Livingston Seagull?",
        "Describe the relationship between Walter White and Jesse Pinkman.",
        "How does Gregor Samsa's family treat him after the change?",
        "Who is Atticus in relation to Scout?",
        "What makes Lisbeth Salander a compelling character?",
        "Why did Dorian Gray hide the portrait?",
        "Summarise what Miss Havisham wants from Pip.",
        "How old is Paddington in the films?",
    ), False),
}


# Eleventh session (pii12): written before any model of that session ran on them.
HARD_CASES_ELEVENTH: dict[str, tuple[tuple[str, ...], bool]] = {
    "private people in running text, no cue word (eleventh, should count)": ((
        "Can you help me answer Hendrika Baumgartner about the parking space?",
        "Torvald Eriksen asked whether the invoice can wait until March; how do I say no politely?",
        "Summarise what Ottilie said in the meeting so I can forward it.",
        "Anselm Kowalczyk and I disagree about the fence; who pays for it?",
        "Rewrite this note so that Marisol Etxeberria understands the new rota.",
        "Is it rude to remind Leopold about the money he borrowed in June?",
        "The handyman, Casimir Dobrev, left the tap dripping again.",
        "Make a polite list of reasons Wilhelmina cannot join the trip.",
        "Write a birthday message for Aurelio Fontanesi from the whole office.",
        "What should I say when Gunnhild asks why her shift was cut?",
    ), True),
    "capitalised verbs and words opening a sentence (eleventh, should not count)": ((
        "Grant read access to the staging bucket for the new service account.",
        "Mark every failing test as skipped until the fix lands.",
        "Bill the client for the extra hours in a separate line.",
        "Sue nobody over a typo; just send a correction, right?",
        "Rob Peter to pay Paul: what does that saying mean?",
        "Will the meeting move if the room is double-booked?",
        "Pat the dough dry before you fry it, or does it not matter?",
        "Chase the unpaid invoices older than sixty days first.",
        "Frank feedback helps juniors more than vague praise, agree?",
        "Carol singing starts at seven; what should we bring?",
    ), False),
    "fictional works and characters, invented story people (eleventh, should not count)": ((
        "Write a short story where Captain Oriel Vantablade finds a map in a bottle.",
        "Why does Atticus Finch take the case?",
        "Give Hermione Granger's reasons for founding S.P.E.W.",
        "In my novel, Lady Wrenna Thistlecombe hides a letter; suggest where.",
        "Compare Elizabeth Bennet and Jane Eyre as heroines.",
        "Invent a villain called Morgrave Ashcroft for a fantasy quest.",
        "What did Ishmael think of Queequeg at first?",
        "Write a dialogue between Sherlock Holmes and a modern hacker.",
        "Is Gandalf stronger than Dumbledore?",
        "Describe a dinner party hosted by Jay Gatsby in three lines.",
    ), False),
    "public figures in questions (eleventh, should not count)": ((
        "What did Marie Curie discover about radium?",
        "Why was Nelson Mandela imprisoned?",
        "Summarise Albert Einstein's 1905 papers for a teenager.",
        "How did Ada Lovelace describe the Analytical Engine?",
        "What year did Neil Armstrong walk on the Moon?",
        "Explain Charles Darwin's finches in two sentences.",
        "Which battles did Napoleon Bonaparte lose?",
        "What is Isaac Newton's third law?",
        "How old was Mozart when he wrote his first symphony?",
        "What made Florence Nightingale famous?",
    ), False),
}


def hard_case_table(run: Runner) -> None:
    print("\n### Hand-written hard cases for the PERSON policy (sixth, ninth and tenth sessions)\n")
    print("| kind | sentences | with PERSON | should |")
    print("|---|---:|---:|---|")
    for kind, (texts, should) in {**HARD_CASES, **HARD_CASES_NINTH, **HARD_CASES_TENTH, **HARD_CASES_ELEVENTH}.items():
        n = sum(any(p.type == "PERSON" for p in run(t)) for t in texts)
        print(f"| {kind} | {len(texts)} | {n} | {'count' if should else 'not count'} |")


def latency_ab(run: Runner, other: PIIDetector, texts: list[str], rounds: int = 4) -> None:
    """detect() of `run`'s detector vs `other` (e.g. the previous span check) on the same encoder output, rounds
    alternating in one process: p50 / p95 / mean per detector, and the hand-written kinds under `other`."""
    inputs = [(t, *run.inputs(t)) for t in texts]
    ms: dict[str, list[float]] = {"this": [], "other": []}
    for k in range(rounds):
        for name, det in (("this", run.detector), ("other", other))[:: 1 if k % 2 == 0 else -1]:
            for text, emb, offs, lang in inputs:
                t0 = time.perf_counter()
                det.detect(text, emb, offs, lang)
                ms[name].append((time.perf_counter() - t0) * 1000)
    print(f"\n### detect() A/B, encoder output given, 1 thread, {len(texts)} texts x {rounds} rounds alternating\n")
    for name, v in ms.items():
        q = statistics.quantiles(v, n=100)
        print(f"{name}: p50 {q[49]:.3f} ms, p95 {q[94]:.3f} ms, mean {statistics.fmean(v):.3f} ms")
    print("\nhand-written kinds under the other detector:")
    for kind, (cases, should) in {**HARD_CASES, **HARD_CASES_NINTH, **HARD_CASES_TENTH, **HARD_CASES_ELEVENTH}.items():
        n = sum(any(p.type == "PERSON" for p in other.detect(t, *run.inputs(t))) for t in cases)
        print(f"| {kind} | {len(cases)} | {n} | {'count' if should else 'not count'} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--fp32", action="store_true", help="use encoder.onnx instead of encoder.int8.onnx")
    ap.add_argument("--limit", type=int, default=None, help="first N rows of each file (quick look)")
    ap.add_argument("--no-head", action="store_true", help="patterns only (no PERSON / STREET_ADDRESS)")
    ap.add_argument("--any-person", action="store_true",
                    help="person_requires_context=false (every name counts; English-only languages still gated)")
    ap.add_argument("--no-full-names", action="store_true",
                    help="person_full_names=false (the name gazetteer is not evidence; context words only)")
    ap.add_argument("--no-person-model", action="store_true",
                    help="person_model=false (the learned span check is not evidence: the sixth session's policy)")
    ap.add_argument("--no-candidates", action="store_true",
                    help="person_candidates=false (the span check judges only the head's own names: the ninth session)")
    ap.add_argument("--no-language", action="store_true", help="do not run the language signal")
    ap.add_argument("--states-cache", default=None,
                    help="folder of the encoder's token states per text, float16 (the cache of "
                    "modelbuild/pii/train_person.py, build/pii_person_cache): the span check runs on them")
    ap.add_argument("--ab-models", default=None,
                    help="a second model folder (e.g. the previous pii_person.json beside links to models/): only the "
                    "detect() latency A/B against it and its hand-written counts (needs --states-cache)")
    ap.add_argument("--cache", default=None,
                    help="folder for the head's output per text (e.g. build/pii_cache); latency is then decode + rules only")
    args = ap.parse_args()

    cfg = PIIConfig(person_requires_context=not args.any_person, person_full_names=not args.no_full_names,
                    person_model=not args.no_person_model, person_candidates=not args.no_candidates)
    if args.cache and args.states_cache:
        ap.error("--cache and --states-cache exclude each other")
    if args.cache and cfg.person_requires_context and cfg.person_model:
        ap.error("--cache keeps the head's output, not the token states the learned span check reads: "
                 "add --no-person-model or drop --cache")
    if args.no_head:
        cfg = PIIConfig(types=tuple(STRUCTURED))
    detector = PIIDetector.load(args.models, cfg)
    embedder = None if args.no_head else TokenEmbedder.load(args.models, int8=not args.fp32, threads=1)
    language = None
    if not args.no_language:
        from semrouter.signals.language import LanguageConfig, LanguageDetector

        language = LanguageDetector(LanguageConfig())
    run = Runner(detector, embedder, language, Path(args.cache) if args.cache else None)
    if args.states_cache:
        run.states = Path(args.states_cache)
        run.states.mkdir(parents=True, exist_ok=True)
    print(f"encoder {'fp32' if args.fp32 else 'int8'}{', patterns only' if args.no_head else ''}")
    if args.ab_models:
        if not args.states_cache:
            ap.error("--ab-models needs --states-cache")
        pii = rows("pii-dev.jsonl.gz")[::5][:300]
        chat = [r for r in rows("jailbreak-dev.jsonl.gz") if r["label"] == "benign"][::10][:300]
        latency_ab(run, PIIDetector.load(args.ab_models, cfg), [r["text"] for r in pii + chat])
        return

    hard_case_table(run)
    recall_tables(run, rows("pii-dev.jsonl.gz", args.limit))
    flagged_table(run, "pii-clean-dev (shell and CLI examples, no personal data)",
                  rows("pii-clean-dev.jsonl.gz", args.limit))
    benign = [r for r in rows("jailbreak-dev.jsonl.gz") if r["label"] == "benign"]
    flagged_table(run, "jailbreak-dev `benign` (ordinary chat prompts)", benign[: args.limit] if args.limit else benign)

    # Held-out checks for the PERSON policy (signals/pii/person.py), fixed before any miss was read: chat origins
    # arena-hard/v0.1, gpteacher/codegen, gpteacher/toolformer (the policy's cues were written reading only
    # arena-hard/v2.0, gpteacher/roleplay, nl2bash, tldr), XSTest safe prompts, Quora questions, and the
    # STS sentences of 11 languages (news, captions, forums; never read here).
    heldout = [dict(r, origin=f"held-out {r['origin']}") for r in rows("jailbreak-dev.jsonl.gz")
               if r["label"] == "benign_lookalike" and r["origin"].startswith("xstest/")]
    qqp = rows("qqp-dev.jsonl.gz")[:: 40][: args.limit or 1000]
    heldout += [{"text": r["a"], "origin": "held-out qqp/question"} for r in qqp]
    per_lang: Counter[str] = Counter()
    for r in rows("paraphrase-dev.jsonl.gz"):
        lang = r.get("lang")
        if r.get("kind") == "sts" and lang is not None and per_lang[lang] < (args.limit or 200):
            per_lang[lang] += 1
            heldout.append({"text": r["a"], "origin": f"held-out sts/{lang}"})
    flagged_table(run, "held-out ordinary text (XSTest, Quora, STS per language)", heldout)

    phone_table(lambda text: [p for p in detect_patterns(text, {"PHONE_NUMBER"})])
    phone_table(lambda text: [p for p in detect_patterns(text, {"PHONE_NUMBER"})], PHONE_FRAMES_HELD_OUT, seed=29)
    phone_table(lambda text: [p for p in detect_patterns(text, {"PHONE_NUMBER"})], PHONE_FRAMES_TENTH, seed=37)

    q = statistics.quantiles(run.ms, n=100)
    print(f"\n### detect() latency, encoder output given, 1 thread, {len(run.ms)} texts\n")
    print(f"p50 {q[49]:.3f} ms, p95 {q[94]:.3f} ms, p99 {q[98]:.3f} ms, max {max(run.ms):.1f} ms")


if __name__ == "__main__":
    main()
