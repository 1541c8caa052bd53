"""How good the music is, as numbers: model metrics, baselines, genre fidelity and music statistics.

Next-token cross-entropy, accuracy and F1 beside a Kneser-Ney n-gram baseline
(``metrics``, ``cache``); whether fused output sounds like the genres asked
for (``fidelity``) and how well follow mode hears them (``follow``); the form
of generated music against real pieces (``statistics``, ``music``); every
architecture side by side with the papers' figures (``zoo``, ``fiddle_paper``).
"""
