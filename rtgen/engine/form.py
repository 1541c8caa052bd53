"""Form at sampling time: a stream that comes back to its own material, and stays in its key.

Measured in docs/music.md (``rtgen eval music``): the genre models, sampled
freely, almost never state a phrase again and drift between keys in blends.
Two pure mechanisms act on the fused distribution, each a control:

* ``repeat`` (0-0.95), a lookback: the stream's recent ``CONTEXT_TOKENS``
  tokens are looked up among everything since the last reset (the seed phrase
  or the performer's call included); where that context occurred before, the
  token that followed it then gets ``repeat`` of the probability mass now.
  Motifs, their rhythm and their intervals come back the way Magenta's
  Lookback RNN made them come back, but with no retraining, for any model
  and any fusion; a context seen only just now (closer than ``MIN_GAP_TOKENS``)
  is not copied, so a single note does not loop, and after ``MAX_RUN_TOKENS``
  tokens in a row that followed the suggestion the lean pauses until the
  models choose something else themselves, so a phrase comes back and then
  moves on instead of looping for ever (at low temperature it otherwise did).
  The engine samples a leaned step even in ``hybrid`` mode (whose argmax
  would take the suggestion every time) and leaves ``argmax`` alone.
* Sections (``rtgen.engine.sections``), with ``repeat`` > 0 (event tokens):
  a stream in sections that end at cadences, are stated again with
  ``variation``, and depart and return, each genre as its corpus does.
* ``key_prior`` (0-1), a soft key: note-ons outside the key of the seed or
  call (the same key the scale lock follows) are scaled down for every fused
  genre alike, so a blend keeps one key instead of each genre pulling toward
  its own, but only while rtgen's recent out-of-key share exceeds the genres'
  own (``KeyBudget``): chorales keep their chromatic notes.
"""

from __future__ import annotations

from collections.abc import Sequence

CONTEXT_TOKENS = 4  # a context this long is a note or two with their timing
MIN_GAP_TOKENS = 12  # copy only from material at least this far back
MAX_RUN_TOKENS = 48  # copied tokens in a row (about 16 notes) before the lean pauses
MAX_CONTEXTS = 1 << 12  # a live stream forgets its oldest contexts past this many (minutes of music; ~1 MB)
MAX_TOKENS = 2 * MAX_CONTEXTS  # ... and its oldest tokens past this many: a repeating stream has few contexts
# What a piece is played with unless a preset says otherwise (`rtgen generate` without --preset, every preset,
# `rtgen eval music`'s genre and blend rows): docs/music.md measured each. Controls() itself stays neutral, the
# models' own distribution, which `rtgen eval fidelity` and the fusion tests compare.
KEY_MEMORY = 1 / 32  # weight of each new onset in the running out-of-key share (about the last 32 notes)
FORM_CONTROLS = {"repeat": 0.6, "key_prior": 0.9, "variation": 0.5}


class Lookback:
    """The stream since the last reset, indexed by context; ``suggest`` names the token to come back to."""

    def __init__(self) -> None:
        self.tokens: list[int] = []  # the stream from position ``base`` on
        self.base = 0  # stream position of ``tokens[0]`` (older tokens are forgotten with their contexts)
        self.last_at: dict[tuple[int, ...], int] = {}  # context -> position of the token that followed it, latest
        self.run = 0  # tokens in a row that were the suggestion
        self.since = 0  # only material from this stream position on is suggested (a section that departs)
        self._suggested: int | None = None

    @property
    def length(self) -> int:
        """Tokens the stream has taken since the last reset."""
        return self.base + len(self.tokens)

    def reset(self) -> None:
        self.tokens.clear()
        self.base = 0
        self.last_at.clear()
        self.run = 0
        self.since = 0
        self._suggested = None

    def push(self, token: int) -> None:
        self.run = self.run + 1 if token == self._suggested else 0
        self._suggested = None
        tokens = self.tokens
        if len(tokens) >= CONTEXT_TOKENS:
            self.last_at[tuple(tokens[-CONTEXT_TOKENS:])] = self.length
        tokens.append(token)
        if len(self.last_at) > MAX_CONTEXTS or len(tokens) > MAX_TOKENS:
            self._forget()

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            self.push(int(token))

    def suggest(self) -> int | None:
        """The token that followed the current context when it last occurred far enough back, or None."""
        if len(self.tokens) < CONTEXT_TOKENS or self.run >= MAX_RUN_TOKENS:
            return None
        at = self.last_at.get(tuple(self.tokens[-CONTEXT_TOKENS:]))
        if at is None or self.length - at < MIN_GAP_TOKENS or at < self.since:
            return None
        self._suggested = self.tokens[at - self.base]
        return self._suggested

    def _forget(self) -> None:
        """Drop the older half of the contexts, and the tokens only they pointed into (a live set runs for hours)."""
        keep_from = self.length - MAX_CONTEXTS // 2
        self.last_at = {context: at for context, at in self.last_at.items() if at >= keep_from}
        cut = keep_from - self.base
        del self.tokens[:cut]
        self.base = keep_from


def lean_towards(values: list[float], token: int, strength: float) -> None:
    """Move ``strength`` (0-1) of the mass of unnormalised ``values`` onto ``token``, in place.

    A token the masks ruled out (value 0) stays out: repetition never
    overrides the pitch range, the polyphony limit or a note's maximum length.
    """
    if strength <= 0 or values[token] <= 0:
        return
    total = sum(values)
    values[token] += total * strength / (1.0 - strength)


class KeyBudget:
    """rtgen's own recent out-of-key share against its genres': the soft key holds only while it is exceeded.

    Scaling out-of-key note-ons by ``1 - key_prior`` all the time flattened
    every genre to its scale (chorale 99.8 % of notes in key against Bach's
    93 %). Now each of rtgen's onsets updates a running share of out-of-key
    notes (an average over about ``1 / KEY_MEMORY`` notes); while it is below
    the genres' measured share (``FormProfile.in_key``) the models play as
    they are, chromatic notes and all, and once it reaches it the key prior
    holds until in-key notes bring it down again.
    """

    def __init__(self) -> None:
        self.share = 0.0  # running share of rtgen's onsets out of key
        self.allowed = 0.0  # the genres' own out-of-key share
        self.holds = False  # the key prior holds now

    def reset(self) -> None:
        self.share, self.holds = 0.0, False

    def onset(self, out_of_key: bool) -> bool:
        """Count one onset; True when the key prior starts or stops holding with it."""
        self.share += ((1.0 if out_of_key else 0.0) - self.share) * KEY_MEMORY
        holds = self.share >= self.allowed
        changed, self.holds = holds != self.holds, holds
        return changed


def soften_out_of_key(mask, encoding, in_key, factor: float) -> None:
    """Scale the note-ons of pitches outside ``in_key`` ([128] bool) by ``factor`` in ``mask`` [V]."""
    for pitch in range(128):
        if not in_key[pitch]:
            mask[encoding.pitch_tokens(pitch)] *= factor
