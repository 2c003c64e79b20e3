"""Build the name gazetteer the PERSON policy reads: `artifacts/pii_names.json`.

    .venv/bin/python -m modelbuild.pii.gazetteer --out modelbuild/artifacts

Source: the US Census 1990 name frequency files (public domain data) as shipped in the PyPI package
`names==0.3.0` (MIT): `dist.male.first` (1,219 names), `dist.female.first` (4,275), `dist.all.last`
(88,799, most frequent first). Kept: every first name, and the `--surnames` most frequent surnames (default
20,000, ~78% of the population's surnames by the file's cumulative share). Removed from both: the names that
are also ordinary capitalised English words (`COMMON_WORDS` below, written here: months, virtues, flowers,
colours, trades, places and place-type nouns (Hills, Station, Bridge), verbs at the start of a sentence such as "Will", "Grant", "Mark"), so that "Will
Smith" needs other evidence while "Dana Whitfield" does not.

Output (sorted, lower case, deterministic): {"source": ..., "first": [...], "last": [...]}; about 0.2 MB.
`semrouter/signals/pii/names.py` loads it; `build_all.py` copies it into models/ like the heads' sidecars.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from importlib.metadata import version
from pathlib import Path

OUT_FILE = "pii_names.json"

# Census names that are also common English words, capitalised at the start of a sentence or in titles
# ("May I...", "Grant access", "Golden Gate", "Summer Camp", "Washington Post"). Written here, not derived
# from any evaluation set.
COMMON_WORDS: frozenset[str] = frozenset("""
will may mark bill grant rose jack june april august dawn hope faith joy grace ruby crystal amber pearl ivy lily daisy
holly iris violet hazel olive fern summer autumn winter spring chase drew rob sue pat ray don guy art sandy rusty penny
candy ginger misty gene dean lance miles sterling king earl major son brain van clay cliff rod reed wade heath basil
ward jewel charity junior buddy rocky cole mason golden sky rich frank earnest dale glen lane carol angel christian
destiny precious harmony melody honey sugar star river rain storm rock stone page park bell cook baker hunter young
white black green brown gray grey long little love day west north south east bishop knight price wood hill field
ford bush cross rice hall walker porter carter turner fisher miller smith taylor cooper parker jordan paris london
georgia virginia carolina dakota florence austin dallas denver houston phoenix sydney chelsea victoria albany
lincoln washington madison jackson jefferson franklin apple amazon windows word excel chrome opera safari
ebony jasmine sage rosemary pepper cherry berry blossom bud brook brooks forest woods sunny sonny tanner
chuck nick pete rick ted al ed lou max rex roy kit kay jo lee von archer carpenter weaver mercy patience
prudence constance unity liberty justice trinity genesis eve adam abel noah job moses saint christmas easter
holiday general admiral captain colonel sergeant doctor judge master lord lady prince princess queen duke
power powers case cases street road house field fields bank banks banker bond box cash cast church court
dollar early english french german irish fair fine gold silver iron steel glass free good best bright short
small strong swift wise new old noble worth key bird fish fox wolf lamb bear buck bull hawk crow swan raven
christ hills line lamp benz beach valley springs falls heights point port harbor harbour bay island lake mount
city county state college university school hospital center centre tower bridge garden gardens square market
mall plaza avenue drive station airport castle palace abbey temple chapel
""".split())


def _read(name: str) -> list[str]:
    text = resources.files("names").joinpath(name).read_text()
    return [line.split()[0].lower() for line in text.splitlines() if line.strip()]


def build(surnames: int) -> dict[str, object]:
    """The gazetteer as a JSON-ready dict: first names and the `surnames` most frequent surnames, minus
    COMMON_WORDS, each sorted."""
    first = sorted({n for n in _read("dist.male.first") + _read("dist.female.first")} - COMMON_WORDS)
    last = sorted(set(_read("dist.all.last")[:surnames]) - COMMON_WORDS)
    return {
        "source": f"US Census 1990 name files via the PyPI package names=={version('names')}; "
                  f"all first names, the {surnames} most frequent surnames, minus {len(COMMON_WORDS)} common words "
                  "(modelbuild/pii/gazetteer.py)",
        "first": first,
        "last": last,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "artifacts")
    ap.add_argument("--surnames", type=int, default=20000, help="most frequent census surnames kept")
    args = ap.parse_args()
    data = build(args.surnames)
    path = args.out / OUT_FILE
    path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{path}: {len(data['first'])} first names, {len(data['last'])} surnames, "  # type: ignore[arg-type]
          f"{path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
