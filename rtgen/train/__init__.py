"""Training: a genre model, a conditional multi-genre model, the two-phase model or the phrase VAE.

``config`` holds the run's settings and the rules every trainer shares (the
learning-rate plateau, when to stop); ``loop`` trains the token models, under
torchrun too; ``twophase`` and ``phrases`` train the two-phase model and the
phrase VAE; ``data`` cuts windows and scores validation; ``runstate`` keeps
resume state and how a run ended; ``plots`` draws the loss curves.
"""
