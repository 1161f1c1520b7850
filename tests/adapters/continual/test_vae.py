"""The VAE behind generative replay: the ELBO formula at a known point, training raises the
ELBO, samples have the data's shape and rough mean (and pixels stay in [0, 1]), and seeding
is private."""

from __future__ import annotations

import math

import pytest
import torch

from adaptd.adapters.continual.vae import VAE


def fit(vae: VAE, x: torch.Tensor, steps: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-2)
    for _ in range(steps):
        batch = x[torch.randint(len(x), (64,), generator=g)]
        loss = -vae.elbo(batch, g).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def mean_elbo(vae: VAE, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(vae.elbo(x, torch.Generator().manual_seed(123)).mean())


def data(n: int = 512) -> torch.Tensor:
    """Correlated Gaussian inputs with a non-zero mean: x = A z + m, z two-dimensional."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, 2, generator=g)
    mix = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [-1.0, 0.5], [0.3, -0.3]])
    return (
        z @ mix.T + torch.tensor([3.0, -2.0, 0.0, 1.0, 0.5]) + 0.05 * torch.randn(n, 5, generator=g)
    )


def test_elbo_formula_at_a_known_point() -> None:
    vae = VAE(3, latent=2, hidden=4)
    with torch.no_grad():
        for p in vae.parameters():
            p.zero_()  # q(z|x) = N(0, I) = prior (KL 0); decoder mean 0; unit scale
    x = torch.tensor([[1.0, -2.0, 0.5]])
    expected = -0.5 * float((x**2).sum()) - 1.5 * math.log(2 * math.pi)
    assert mean_elbo(vae, x) == pytest.approx(expected)
    bern = VAE(3, latent=2, hidden=4, likelihood="bernoulli")
    with torch.no_grad():
        for p in bern.parameters():
            p.zero_()  # every pixel probability 1/2
    pixels = torch.tensor([[0.0, 1.0, 1.0]])
    assert mean_elbo(bern, pixels) == pytest.approx(3 * math.log(0.5))


def test_training_raises_the_elbo_and_samples_look_like_the_data() -> None:
    x = data()
    vae = VAE(5, latent=2, hidden=32, seed=0)
    before = mean_elbo(vae, x)
    fit(vae, x, steps=150)
    after = mean_elbo(vae, x)
    assert after > before + 5.0
    samples = vae.sample(2000, torch.Generator().manual_seed(1))
    assert samples.shape == (2000, 5)
    assert torch.allclose(samples.mean(0), x.mean(0), atol=0.3)
    assert torch.allclose(samples.std(0), x.std(0), atol=0.35)
    means = vae.sample(2000, torch.Generator().manual_seed(1), noise=False)
    assert torch.allclose(means.mean(0), x.mean(0), atol=0.3)


def test_bernoulli_samples_are_probabilities() -> None:
    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(256, 6, generator=g) < torch.linspace(0.1, 0.9, 6)).float()
    vae = VAE(6, latent=2, hidden=16, likelihood="bernoulli", seed=0)
    before = mean_elbo(vae, pixels)
    fit(vae, pixels, steps=100)
    assert mean_elbo(vae, pixels) > before
    samples = vae.sample(1000, g)
    assert bool(((samples >= 0) & (samples <= 1)).all())
    assert torch.allclose(samples.mean(0), torch.linspace(0.1, 0.9, 6), atol=0.1)


def test_seeded_weights_leave_the_global_rng_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    a, b = VAE(4, seed=1), VAE(4, seed=1)
    assert torch.equal(torch.rand(3), expected)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(a.decoder[0].weight, VAE(4, seed=2).decoder[0].weight)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_dim": 0}, "in_dim"),
        ({"in_dim": 3, "latent": 0}, "latent"),
        ({"in_dim": 3, "hidden": 0}, "hidden"),
        ({"in_dim": 3, "likelihood": "poisson"}, "likelihood"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VAE(**kwargs)
