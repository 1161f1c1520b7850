from __future__ import annotations

import pytest

from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
from bench.learn.sinusoid import protocol
from bench.learn.sinusoid.pretrained import JointRegression


def test_make_learner_uses_the_protocol_and_reptile_its_own_settings() -> None:
    classes = {"maml": MAML, "fomaml": FOMAML, "metasgd": MetaSGD, "anil": ANIL}
    for name, cls in classes.items():
        learner = protocol.make_learner(name, seed=0)
        assert type(learner) is cls
        assert (learner.inner_steps, learner.inner_lr, learner.meta_lr) == (1, 0.01, 1e-3)
        assert learner.net.hidden == (40, 40) and learner.net.activation == "relu"
    reptile = protocol.make_learner("reptile", seed=0)
    assert type(reptile) is Reptile
    assert (reptile.inner_steps, reptile.inner_lr, reptile.meta_lr) == (5, 0.02, 0.1)
    assert type(protocol.make_learner("pretrained", seed=0)) is JointRegression
    with pytest.raises(ValueError, match="name"):
        protocol.make_learner("protonet", seed=0)


def test_the_cache_of_maml_weights_is_per_seed() -> None:
    assert protocol.cache_path(0) != protocol.cache_path(1)
    assert protocol.cache_path(0).suffix == ".pt"
