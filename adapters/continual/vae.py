"""A small variational autoencoder (Kingma & Welling, 2014): the generator of generative replay.

An encoder MLP maps ``x`` to the mean and log-variance of a diagonal Gaussian ``q(z | x)``; a
decoder MLP maps a latent ``z ~ N(0, I)`` back to the input space. The decoder's likelihood is
"gaussian" (standardised real inputs: mean from the decoder, one learned scale per input) or
"bernoulli" (inputs in [0, 1] such as pixels: the decoder gives logits). :meth:`VAE.elbo` is
the one-sample reparameterised evidence lower bound per example; :meth:`VAE.sample` generates
inputs from latents drawn from the prior, which is what generative replay rehearses.

Every random draw takes an explicit ``torch.Generator`` and the initial weights depend only on
``seed``, so training is reproducible without touching the global RNG.

Examples
--------
>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> vae = VAE(in_dim=4, latent=2, hidden=16, seed=0)
>>> x = torch.randn(32, 4, generator=g)
>>> vae.elbo(x, g).shape
torch.Size([32])
>>> vae.sample(5, g).shape
torch.Size([5, 4])

References
----------
Kingma, D. P. & Welling, M. (2014). Auto-encoding variational Bayes. ICLR.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ..checks import one_of, positive_int

__all__ = ["LIKELIHOODS", "VAE", "Likelihood"]

Likelihood = Literal["gaussian", "bernoulli"]
LIKELIHOODS: tuple[Likelihood, ...] = ("gaussian", "bernoulli")


class VAE(nn.Module):
    """Variational autoencoder with one-hidden-layer MLP encoder and decoder.

    Parameters
    ----------
    in_dim
        Input features.
    latent
        Latent dimensions.
    hidden
        Width of the encoder's and the decoder's hidden layer.
    likelihood
        "gaussian" or "bernoulli" (inputs in [0, 1]).
    seed
        Seed of the initial weights.
    """

    def __init__(
        self,
        in_dim: int,
        latent: int = 8,
        hidden: int = 64,
        likelihood: Likelihood = "gaussian",
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("latent", latent), ("hidden", hidden)):
            positive_int(name, value)
        one_of("likelihood", likelihood, LIKELIHOODS)
        self.in_dim = in_dim
        self.latent = latent
        self.hidden = hidden
        self.likelihood: Likelihood = likelihood
        with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left as it was
            torch.manual_seed(int(seed))
            self.encoder = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
            )
            self.decoder = nn.Sequential(
                nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, in_dim)
            )
        self.log_scale = nn.Parameter(torch.zeros(in_dim), requires_grad=likelihood == "gaussian")

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(z | x)``, each ``(n, latent)``."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        return mean, log_var

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's output for ``z``: the mean (gaussian) or logits (bernoulli)."""
        return self.decoder(z)

    def elbo(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """One-sample estimate of ``E_q[log p(x | z)] - KL(q(z | x) || N(0, I))`` per row
        (nats)."""
        mean, log_var = self.encode(x)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * log_var) * noise
        out = self.decode(z)
        if self.likelihood == "bernoulli":
            log_lik = -nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            scaled = (x - out) * torch.exp(-self.log_scale)
            log_lik = -0.5 * scaled.pow(2) - self.log_scale - 0.5 * math.log(2 * math.pi)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
        return log_lik.sum(-1) - kl

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, *, noise: bool = True) -> Tensor:
        """``n`` generated inputs for latents drawn from the prior.

        "bernoulli": the decoder's probabilities (grey levels, as generative replay of pixels
        uses them). "gaussian": a draw from ``p(x | z)`` when ``noise`` (what the decoder leaves
        to its learned scale, often most of an unstructured feature's spread, comes back),
        else the decoder's mean.
        """
        z = torch.randn(n, self.latent, generator=generator)
        out = self.decode(z)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)
        if not noise:
            return out
        return out + torch.exp(self.log_scale) * torch.randn(out.shape, generator=generator)
