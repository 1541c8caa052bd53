"""The ESAC paper's phrase VAE (model 2): a whole two-bar phrase in, a latent point, the phrase back out.

A phrase is ``phrase_steps`` sixteenths (32: two bars of 4/4) in the time-step
encoding (``rtgen.data.timestep.TimeStepEncoding``), given to the network as a
``phrase_steps x vocab_size`` one-hot grid: each step is one column set, a
pitch (an onset), hold ``_`` or rest ``r``. This representation was chosen
over a 32 x 128 piano roll of onsets and holds because the corpora it is
trained on (fiddle and folk melodies) are monophonic, because a one-hot step
can never decode to an impossible state (a hold with no note, two onsets at
once), and because decoding is one argmax per step; its vocabulary is the
one the time-step models already use, so a phrase round-trips through the same
decoder the live voice plays with. PAD and SEP never occur inside a phrase;
their columns are learnt as always-off and never chosen when decoding.

Encoder: fc1, fc2 (ReLU, dropout) then fc21 -> mu and fc22 -> log-variance;
reparameterisation z = mu + sigma * eps; decoder fc3, fc4 (ReLU, dropout),
fc5, sigmoid. Loss: binary cross-entropy of the sigmoid outputs against the
one-hot grid, summed over the grid, plus ``beta`` times the KL divergence from
N(0, I), both per phrase (Kingma and Welling's sums). Weights start Xavier
uniform, biases zero (the paper). The paper gives neither layer sizes, latent
size nor beta; the defaults below are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

VAE_FAMILY = "vae"


@dataclass(frozen=True)
class VaeConfig:
    """Shape and loss weight of one phrase VAE; stored as ``config`` in its checkpoint's meta.json."""

    vocab_size: int = 132  # columns per step: the time-step vocabulary (PAD, SEP, r, _, 128 pitches)
    phrase_steps: int = 32  # sixteenths per phrase: 2 bars of 4/4
    hidden_sizes: tuple[int, ...] = (512, 256)  # fc1, fc2 widths; the decoder mirrors them (fc3 = fc2, fc4 = fc1)
    latent_dim: int = 32  # size of z
    dropout: float = 0.2  # after fc1/fc2 and fc3/fc4, training only; 0-0.9
    beta: float = 1.0  # weight of the KL term in the loss, >= 0
    lr_step_epochs: int = 10  # training: the learning rate is multiplied by lr_factor every this many epochs
    family: str = VAE_FAMILY  # marks the checkpoint as a phrase VAE (rtgen.nets.checkpoint.load_model)

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.phrase_steps < 1 or self.latent_dim < 1:
            raise ValueError("vocab_size >= 2, phrase_steps >= 1 and latent_dim >= 1 are required")
        if len(self.hidden_sizes) != 2 or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes are the two encoder widths (fc1, fc2), got {self.hidden_sizes}")
        if not 0.0 <= self.dropout < 0.9 or self.beta < 0 or self.lr_step_epochs < 1:
            raise ValueError("dropout 0-0.9, beta >= 0 and lr_step_epochs >= 1 are required")
        if self.family != VAE_FAMILY:
            raise ValueError(f"family of a VaeConfig is {VAE_FAMILY!r}, not {self.family!r}")

    @property
    def input_size(self) -> int:
        return self.phrase_steps * self.vocab_size


class PhraseVAE(nn.Module):
    """Phrases of token ids [B, S] in, reconstructed step probabilities [B, S, V] out (see the module docstring)."""

    def __init__(self, config: VaeConfig) -> None:
        super().__init__()
        self.config = config
        wide, narrow = config.hidden_sizes
        self.fc1 = nn.Linear(config.input_size, wide)
        self.fc2 = nn.Linear(wide, narrow)
        self.fc21 = nn.Linear(narrow, config.latent_dim)
        self.fc22 = nn.Linear(narrow, config.latent_dim)
        self.fc3 = nn.Linear(config.latent_dim, narrow)
        self.fc4 = nn.Linear(narrow, wide)
        self.fc5 = nn.Linear(wide, config.input_size)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        for layer in (self.fc1, self.fc2, self.fc21, self.fc22, self.fc3, self.fc4, self.fc5):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def device(self) -> torch.device:
        return self.fc5.weight.device

    def one_hot(self, tokens: Tensor) -> Tensor:
        """Token ids [B, S] -> the flat one-hot grid [B, S * V] the encoder reads."""
        return F.one_hot(tokens, self.config.vocab_size).float().flatten(1)

    def encode(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, log-variance), each [B, latent_dim], of phrases [B, S]."""
        h = self.dropout1(F.relu(self.fc2(F.relu(self.fc1(self.one_hot(tokens))))))
        return self.fc21(h), self.fc22(h)

    @staticmethod
    def reparameterise(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): a sample that gradients flow through."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: Tensor) -> Tensor:
        """Pre-sigmoid outputs [B, S, V] of fc5 for latent points [B, latent_dim]."""
        h = self.dropout2(F.relu(self.fc4(F.relu(self.fc3(z)))))
        return self.fc5(h).view(-1, self.config.phrase_steps, self.config.vocab_size)

    def decode(self, z: Tensor) -> Tensor:
        """Step probabilities [B, S, V] (each column a Bernoulli: sigmoid of fc5)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, tokens: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(logits [B, S, V], mu, logvar) of phrases [B, S]; z is sampled (reparameterised)."""
        mu, logvar = self.encode(tokens)
        return self.decode_logits(self.reparameterise(mu, logvar, generator)), mu, logvar


def vae_loss(model: PhraseVAE, tokens: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(BCE + beta * KL, mean per phrase in nats; and [BCE, KL] per phrase, detached) for phrases [B, S].

    The BCE is computed from the logits (``binary_cross_entropy_with_logits``),
    the same loss as BCE after the sigmoid without its overflow at saturation.
    """
    logits, mu, logvar = model(tokens, generator)
    target = F.one_hot(tokens, model.config.vocab_size).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(tokens)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(tokens)
    return bce + model.config.beta * kl, torch.stack([bce, kl]).detach()


def is_vae_meta(meta: dict) -> bool:
    """True for a phrase VAE's meta.json: it answers with whole phrases, so no next-token path may load it."""
    config = meta.get("config")
    return isinstance(config, dict) and config.get("family") == VAE_FAMILY


def playable_tokens(probabilities: Tensor, first_playable: int) -> Tensor:
    """The likeliest token per step [B, S] among ids >= ``first_playable`` (rest, hold, pitches; not PAD/SEP)."""
    return probabilities[..., first_playable:].argmax(-1) + first_playable
