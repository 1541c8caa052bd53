"""The engine: genre models with warm state on one device, fused and sampled one token at a time.

``warm`` steps every genre model by the chosen token and keeps its state on
the device; ``fusion`` turns K models' logits and the genre weights into one
distribution, ``steering``, ``form`` and ``density`` reshape it, ``sampling``
picks the token; ``controls`` is the performer's live settings as one frozen
value; ``loading`` picks the models played together; ``variation`` runs the
phrase VAE; ``offline`` writes whole pieces for ``rtgen generate``.
"""
