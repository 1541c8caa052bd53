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
* ``Reprise``, with ``repeat`` > 0 (event tokens): a section stated again when the models
  end it. The genre models learned where pieces end (SEP between training
  pieces), but a live stream never plays SEP: masked, it left the models
  playing an ending, long notes and rests, until they drifted somewhere else.
  Now an ending closes a section: the stream moves on to the section's next bar
  line, the models hear SEP, then the section again as it was played, and the
  models carry on after it into a new section: A A B B, as folk and fiddle
  tunes are played. A section the models have not ended after
  ``MAX_SECTION_BARS`` ends at that bar line all the same (renaissance pieces
  run for minutes; without this their 16 bars never came back to anything).
  A section shorter than ``MIN_SECTION_BARS`` (an ending just after a restatement) is not restated:
  the models hear SEP and a new section begins. An ending within a section's
  first bar is not taken (SEP stays masked), so the stream's time always moves.
  A change of weights or fusion method drops a restatement under way and opens
  a new section: a performer who moves the blend hears the new blend at once.
* ``key_prior`` (0-1), a soft key: note-ons outside the key of the seed or
  call (the same key the scale lock follows) are scaled by ``1 - key_prior``,
  for every fused genre alike, so a blend keeps one key instead of each genre
  pulling toward its own. 1 is the hard scale lock.
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
FORM_CONTROLS = {"repeat": 0.6, "key_prior": 0.9}
BAR_BEATS = 4  # sections are restated from a bar line of 4/4, counted from the section's first step
MIN_SECTION_BARS = 2  # a shorter section is not restated (the models ended just after a restatement)
MAX_SECTION_BARS = 8  # a longer one is restated from its start up to this many bars


class Lookback:
    """The stream since the last reset, indexed by context; ``suggest`` names the token to come back to."""

    def __init__(self) -> None:
        self.tokens: list[int] = []  # the stream from position ``base`` on
        self.base = 0  # stream position of ``tokens[0]`` (older tokens are forgotten with their contexts)
        self.last_at: dict[tuple[int, ...], int] = {}  # context -> position of the token that followed it, latest
        self.run = 0  # tokens in a row that were the suggestion
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
        if at is None or self.length - at < MIN_GAP_TOKENS:
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


class Reprise:
    """Where the current section began, and what is still to be played of its restatement (event encoding)."""

    def __init__(self, encoding) -> None:
        self.encoding = encoding
        self.bar_steps = BAR_BEATS * encoding.steps_per_beat
        self.start: int | None = None  # stream position of the section's first step; None: the next sampled step
        self.start_steps = 0  # the stream's time then, in grid steps
        self.queue: list[int] = []  # tokens of the restatement still to play, the next one last

    def reset(self) -> None:
        self.start = None
        self.queue.clear()

    def mark(self, position: int, now_steps: int) -> None:
        """Before a sampled step: the first one after a reset or a restatement opens a section."""
        if self.start is None:
            self.start, self.start_steps = position, now_steps

    def may_end(self, now_steps: int) -> bool:
        """An ending counts once the section has played a bar: endings in a row would stop the stream's time."""
        return self.start is not None and now_steps - self.start_steps >= self.bar_steps

    def full(self, now_steps: int) -> bool:
        """The section has run ``MAX_SECTION_BARS`` with no ending: it ends at this bar line all the same."""
        return self.start is not None and now_steps - self.start_steps >= MAX_SECTION_BARS * self.bar_steps

    def end(self, lookback: Lookback, now_steps: int) -> int:
        """The models ended the piece at ``now_steps``: queue the restatement; its first token."""
        enc, elapsed = self.encoding, now_steps - self.start_steps
        tokens = enc.shift_tokens(-elapsed % self.bar_steps)
        tokens.append(enc.sep_id)
        if elapsed >= MIN_SECTION_BARS * self.bar_steps and self.start >= lookback.base:
            section = lookback.tokens[self.start - lookback.base :]
            bars = min(-(-elapsed // self.bar_steps), MAX_SECTION_BARS)
            tokens.extend(first_bars(enc, section, bars * self.bar_steps))  # whole bars: the meter goes on
        self.queue = tokens[::-1]
        self.start = None
        return self.queue.pop()


def first_bars(encoding, tokens: Sequence[int], steps: int) -> list[int]:
    """Event ``tokens`` over exactly ``steps`` grid steps (cut, or padded with rest), less offs of earlier notes."""
    enc, out, begun, now = encoding, [], set(), 0
    for token in tokens:
        if enc.shift_base <= token < enc.velocity_base:
            if now + token - enc.shift_base + 1 >= steps:
                break
            now += token - enc.shift_base + 1
        elif enc.on_base <= token < enc.off_base:
            begun.add(token - enc.on_base)
        elif enc.off_base <= token < enc.shift_base and token - enc.off_base not in begun:
            continue
        out.append(token)
    return out + enc.shift_tokens(steps - now)


def lean_towards(values: list[float], token: int, strength: float) -> None:
    """Move ``strength`` (0-1) of the mass of unnormalised ``values`` onto ``token``, in place.

    A token the masks ruled out (value 0) stays out: repetition never
    overrides the pitch range, the polyphony limit or a note's maximum length.
    """
    if strength <= 0 or values[token] <= 0:
        return
    total = sum(values)
    values[token] += total * strength / (1.0 - strength)


def soften_out_of_key(mask, encoding, in_key, strength: float) -> None:
    """Scale the note-ons of pitches outside ``in_key`` ([128] bool) by ``1 - strength`` in ``mask`` [V]."""
    for pitch in range(128):
        if not in_key[pitch]:
            mask[encoding.pitch_tokens(pitch)] *= 1.0 - strength
