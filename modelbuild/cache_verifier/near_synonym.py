"""Fits the near-synonym weights of semrouter/cache/near_synonym.py from hand-written word pairs.

The pairs below were written for this (tenth session, `cache12`), not taken from ../shared/data, and share no pair
with the lists the benchmarks swap (modelbuild/cache_verifier/chatpairs.py `_SYN`, benchmarks/
bench_cache_long_swaps.py `_TERMS`). SYNONYMS: one can stand for the other in a question (fix / repair, big-ish
adjectives, nouns and verbs); SIBLINGS: co-hyponyms, converses and opposites that change the answer (lender /
borrower, inner / outer, upload / download). Features (near_synonym.features) from the shipped MiniLM encoder
(models/encoder.int8.onnx); logistic regression, C = 10; leave-one-out counts at 0.5-0.8 printed.

    .venv/bin/python -m modelbuild.cache_verifier.near_synonym   # prints WEIGHTS / BIAS to paste, and the counts
"""

from __future__ import annotations

import numpy as np

SYNONYMS = """
fix repair|sick ill|rich wealthy|smart clever|hard difficult|easy simple|end finish|house home|angry mad|
happy glad|talk speak|build construct|cost price|shop store|trip journey|gift present|rapid swift|huge enormous|
tiny small|middle center|couch sofa|issue problem|cheap inexpensive|stop halt|connect link|run execute|
erase wipe|copy duplicate|combine merge|split separate|verify check|calculate compute|improve enhance|
guess estimate|purpose goal|benefits advantages|drawbacks downsides|tips advice|ideas suggestions|photo picture|
dad father|mom mother|doctor physician|lawyer attorney|trash garbage|autumn fall|apartment flat|shut close|
want desire|need require|allow permit|try attempt|keep retain|tell inform|ask inquire|answer response|
fast speedy|strong powerful|weak feeble|brave courageous|scared afraid|sad unhappy|start launch|goal objective|
rule regulation|car vehicle|road street|hint clue|quiet silent|loud noisy|wrong incorrect|total sum|whole entire|
often frequently|maybe perhaps|almost nearly|usually typically|enough adequate|own possess|reply respond|
grow expand|setup configuration|config settings|docs documentation|bug defect|crash failure|app application|
speed pace|topic subject|outline summary|recommend suggest|simplest easiest|best optimal|biggest largest|
error exception|fast quickly|properly correctly|steps instructions|prevent avoid|cure treat|boost increase|
reduce lower|cut trim|pick select|fetch retrieve|find search|tutorial guide|learn study|understand grasp|
write compose|draft write|kid child|folks people|buddy friend|job position|salary pay|boss manager|firm company|
chore task|meal food|hungry starving|beautiful pretty|ugly unattractive|funny humorous|weird strange|odd unusual|
famous renowned|danger risk|safe secure|shorten abbreviate|extend lengthen|rename relabel|modify alter|
edit change|handle manage|deal cope|illness disease|medicine medication|symptoms signs|kinds types|sorts kinds|
parts components|piece part|area region|nation country|global worldwide|ancient old|modern contemporary|
current present|future upcoming|past previous|earlier prior|later subsequent
"""
SIBLINGS = """
teacher student|parent child|doctor patient|husband wife|king queen|brother sister|uncle aunt|import export|
upload download|input output|send receive|sender recipient|client server|lender borrower|debit credit|
asset liability|profit loss|supply demand|inflation deflation|predator prey|winner loser|encrypt decrypt|
push pull|read write|login logout|frontend backend|header footer|row column|width height|sine cosine|mean median|
integer float|stack queue|male female|boy girl|cat dog|coffee tea|breakfast dinner|summer winter|morning evening|
gold silver|iron copper|lion tiger|proton electron|anode cathode|sodium potassium|hydrogen oxygen|artery vein|
dna rna|virus bacteria|plant animal|mass weight|hypothesis theory|noun verb|adjective adverb|vowel consonant|
lungs heart|liver kidney|piano guitar|violin cello|novel poem|comedy tragedy|lunch dinner|rain snow|sun moon|
planet star|ocean lake|mountain valley|urban rural|ceiling floor|entrance exit|arrival departure|
uppercase lowercase|encode decode|compile interpret|caller callee|source destination|producer consumer|
publisher subscriber|primary secondary|major minor|divisor dividend|multiplication division|addition subtraction|
derivative integral|radius diameter|area perimeter|square circle|triangle rectangle|odd even|convex concave|
latitude longitude|osmosis diffusion|photosynthesis respiration|herbivore carnivore|endothermic exothermic|
cation anion|catalyst inhibitor|ionic covalent|solid liquid|evaporation condensation|conductor insulator|
series parallel|kinetic potential|velocity acceleration|frequency wavelength|reflection refraction|
prosecution defense|judge jury|felony misdemeanor|civil criminal|capitalism socialism|
microeconomics macroeconomics|revenue expense|stocks bonds|wholesale retail|creditor debtor|manager subordinate|
freshman senior|undergraduate graduate|nephew niece|grandparent grandchild|buying selling|borrow lend|give take|
teach learn|include exclude|inner outer|upstream downstream|inbound outbound|ingress egress|incoming outgoing|
mean mode|binary decimal|hexadecimal octal|ascending descending|head tail|local global|public private|
static dynamic|shallow deep|request response|commit rollback|merge rebase|clone fork|tabs spaces|bold italic|
portrait landscape|wet dry|tall short|synchronous asynchronous|server client|serialize deserialize|debug release|
staging production|insert update|sender receiver|push pop|enqueue dequeue|lock unlock|mount unmount|
installing uninstalling|buy rent|renting owning|import require|inheritance composition|interface class|
array dictionary|tuple list|string integer|rows columns|vertical horizontal|north south|east west|
clockwise counterclockwise
"""


def word_pairs(text: str) -> list[tuple[str, str]]:
    """'a b|c d' -> [(a, b), (c, d)] (newlines ignored)."""
    out = []
    for item in text.replace("\n", "").split("|"):
        words = item.split()
        if len(words) == 2:
            out.append((words[0], words[1]))
    return out


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    from modelbuild.cache_verifier.embed import Encoder
    from semrouter.cache import near_synonym

    syn, sib = word_pairs(SYNONYMS), word_pairs(SIBLINGS)
    pairs = syn + sib
    y = np.array([1] * len(syn) + [0] * len(sib))
    enc = Encoder(threads=1)
    x = np.stack([near_synonym.features(enc(near_synonym.texts(a, b))) for a, b in pairs])
    fit = LogisticRegression(C=10, max_iter=5000).fit(x, y)
    print(f"{len(syn)} synonyms, {len(sib)} siblings; features {near_synonym.FEATURES}")
    print("WEIGHTS =", np.array2string(fit.coef_[0], separator=", ", precision=8), "BIAS =", f"{fit.intercept_[0]:.7f}")
    loo = np.zeros(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        loo[i] = LogisticRegression(C=10, max_iter=5000).fit(x[keep], y[keep]).predict_proba(x[i:i + 1])[0, 1]
    for p in (0.5, 0.6, 0.7, 0.8):
        print(f"leave-one-out P >= {p}: synonyms {(loo[y == 1] >= p).sum()} / {len(syn)}, siblings "
              f"{(loo[y == 0] >= p).sum()} / {len(sib)}")


if __name__ == "__main__":
    main()
