"""Validation pieces as played: repeat marks expanded, others left as notated, the result cached."""

from __future__ import annotations

import pytest

from rtgen.data.corpus import load_tokens
from rtgen.data.repeats import EXPANDED, NOTATED, expanded_pieces

TUNES = b"""X:1
T:Repeated
M:4/4
L:1/4
K:C
|:CDEF|GABc:|
|:cBAG|FEDC:|
X:2
T:Through-composed
M:4/4
L:1/4
K:C
CDEF|GABc|
cBAG|FEDC|
"""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RTGEN_CACHE_DIR", str(tmp_path / "cache"))


def test_a_tune_between_repeat_marks_is_played_twice_and_one_without_is_left_alone(tmp_path):
    folder = tmp_path / "tunes"
    folder.mkdir()
    (folder / "two.abc").write_bytes(TUNES)
    corpus = load_tokens(folder, transpose=False, progress=False, workers=1)
    names = list(corpus.names)
    assert names == ["tunes/two.abc#1", "tunes/two.abc#2"]
    pieces, status = expanded_pieces(folder, corpus, names)
    assert status == [EXPANDED, NOTATED] and pieces[1] is None
    notated = corpus.encoding.decode(corpus.tokens[corpus.offsets[0] : corpus.offsets[1]].tolist())
    a, b = [n.pitch for n in notated[:8]], [n.pitch for n in notated[8:]]
    assert [n.pitch for n in pieces[0]] == a + a + b + b, "each part played twice, as a fiddler plays it"
    assert pieces[0][8].start == 8, "the second time round starts where the first ended"
    again, status_again = expanded_pieces(folder, corpus, names)
    assert (again, status_again) == (pieces, status), "served from the cache as it was made"
