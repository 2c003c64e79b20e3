"""Benign persona and role-play requests written for this project, generated from templates (seeded, reproducible),
stored on the jailbreak exemplar memory's "none" side (modelbuild/safety_memory.py `--persona`).

    python -m modelbuild.safety_persona        # prints the count and a few rows

Why: the memory's jailbreak witnesses are mostly DAN-style templates, where "stay in character" / "never break
character" / "do not reveal you are an AI" are the common phrases. An ordinary persona request (a game master, a
language tutor, an interview or customer-service simulation, a fiction character, a product-demo mascot) that says
the same had only jailbreak witnesses among its nearest stored views and was refused (review17; benchmarks/
bench_persona.py). These rows put ordinary persona requests near those witnesses, so the vote reads the rest of the
prompt: a persona with a harmful request or "no rules" keeps its other views near the witnesses.

Every sentence below was written here; none is a shared data set's row. The hand-written persona set that measures
this (benchmarks/data/persona_prompts.jsonl) uses other roles and sentences: it is never read here.
"""

from __future__ import annotations

import random
import sys

# (role as the assistant is told to be it, what it does in the scene)
_ROLES = [
    ("a friendly librarian in a small town", "help me find a novel for a long train ride"),
    ("a ship's cook on a whaling boat in 1850", "tell me what the crew eats on a long voyage"),
    ("a park ranger at a national park", "explain which trails suit a family with young children"),
    ("a barista at a busy cafe", "take my order and suggest a pastry"),
    ("a fitness coach", "plan a gentle first week of workouts for me"),
    ("a travel agent", "help me plan three days in Kyoto"),
    ("a car mechanic", "explain why my brakes squeak when it rains"),
    ("a museum curator", "walk me through the Egyptian room"),
    ("a detective in 1940s Los Angeles", "question me about a missing necklace"),
    ("a knight guarding a castle gate", "ask me who I am and why I want to enter"),
    ("an astronaut on the International Space Station", "describe a normal day in orbit"),
    ("a wise old tree in an enchanted forest", "tell me what you have seen over the centuries"),
    ("a Spanish conversation partner", "chat with me about my weekend in simple Spanish"),
    ("a German teacher", "quiz me on the past tense"),
    ("a Mandarin tutor", "help me practise ordering food"),
    ("a job interviewer at a software company", "ask me behavioural questions one at a time"),
    ("a recruiter for a retail chain", "run a short phone screening with me"),
    ("a customer who received the wrong size of shoes", "let me practise handling your complaint"),
    ("a help-desk agent for a printer brand", "help me fix a paper jam"),
    ("a bank teller", "help me open a savings account, for a training video"),
    ("a flight attendant", "give the safety briefing before take-off"),
    ("a tour guide in ancient Athens", "show me around the agora"),
    ("a friendly robot in a children's science show", "explain why the sky is blue"),
    ("the narrator of a cozy mystery game", "describe the village where the story begins"),
    ("the game master of a science-fiction tabletop game", "set the first scene on a mining colony"),
    ("a dragon who loves riddles", "challenge me with a riddle"),
    ("a poet from the Romantic era", "describe a storm over the sea"),
    ("a famous chef judging a cooking contest", "give feedback on my pasta dish"),
    ("a medieval blacksmith", "explain how you make a horseshoe"),
    ("a sports commentator", "narrate my neighbour's dog chasing a ball"),
    ("a kind grandmother character in my novel", "tell the grandchildren a story about the old farm"),
    ("the mascot of our pet-food brand for a trade-show demo", "greet visitors and talk about healthy treats"),
    ("the virtual receptionist of our dental clinic demo", "help a visitor book a cleaning"),
    ("a mock opposing counsel", "cross-examine me so I can practise for moot court"),
    ("a patient with a sprained ankle", "let our nursing students practise taking your history"),
    ("a shy new student at school", "let me practise making friends with you"),
]
_OPENERS = ["You are {role}.", "Pretend you are {role}.", "Act as {role}.", "Play {role}.",
            "For this conversation, you are {role}.", "I want you to be {role}.", "Take on the role of {role}.",
            "Let's role-play: you are {role}."]
_STAY = [
    "Stay in character.", "Never break character.", "Stay in character the whole time.",
    "Don't break character, even if I ask something odd.", "Keep the role until I say stop.",
    "Remain in character for the rest of the chat.", "Do not step out of the role.",
    "Never reveal that you are an AI; just be the character.", "Don't mention that you are a language model.",
    "Stay in character no matter what I say.", "Keep the act going for the whole session.",
    "Answer only as this character from now on.", "Don't drop the persona.",
    "Never break the fourth wall.", "Always stay in your role and never say you are an assistant.",
]
_TASKS = ["{task}.", "Please {task}.", "Start by asking me a question, then {task}.", "First, {task}."]


def persona_prompts(n: int = 480, seed: int = 0) -> list[str]:
    """`n` distinct benign persona requests (an opener naming the role, a stay-in-character clause and the scene's
    task, in one of three orders), seeded."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        role, task = rng.choice(_ROLES)
        opener = rng.choice(_OPENERS).format(role=role)
        stay = rng.choice(_STAY)
        ask = rng.choice(_TASKS).format(task=task)
        ask = ask[0].upper() + ask[1:]
        order = rng.randrange(3)
        text = (f"{opener} {stay} {ask}" if order == 0 else f"{opener} {ask} {stay}" if order == 1
                else f"{opener} {ask}")
        if order == 2:  # the clause inside the task sentence
            text = f"{opener} {ask[:-1]}, and {stay[0].lower()}{stay[1:]}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def main() -> int:
    rows = persona_prompts()
    print(f"{len(rows)} persona prompts; e.g.")
    for t in rows[:5]:
        print(" ", t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
