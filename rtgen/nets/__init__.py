"""The networks: each token model has ``initial_state(batch)`` and ``step(tokens, state) -> (logits, state)``.

Recurrent language models and their cheap per-token step (``recurrent``); the
papers' other networks (``windowed``, ``twophase``, and the phrase VAE in
``vae``, which maps whole phrases instead of stepping tokens), built by name
from a ``NetConfig`` (``architectures``, ``config``); checkpoints that describe
themselves and load without unpickling (``checkpoint``); the Kneser-Ney n-gram
baseline (``ngram``) and the genre classifier (``classifier``).
"""
