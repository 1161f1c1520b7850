"""MatchingNet: attention over the support set, log class probabilities, full context."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.fewshot import Embedding, MatchingNet, MatchingSupport


def support_set(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    return torch.randn(7, 5, generator=g), y, torch.randn(4, 5, generator=g)


@pytest.mark.parametrize("fce", [False, True])
def test_attention_sums_to_one_and_scores_are_its_class_sums(fce: bool) -> None:
    sx, sy, qx = support_set(0)
    fitted = MatchingNet(Embedding(5, (6,)), fce=fce, seed=1).fit(sx, sy)
    assert isinstance(fitted, MatchingSupport)
    attention = fitted.attention(qx)
    assert attention.shape == (4, 7) and bool((attention > 0).all())
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(4))
    per_class = torch.stack([attention[:, sy == c].sum(dim=1) for c in range(3)], dim=1)
    torch.testing.assert_close(fitted.scores(qx), per_class.log())


def test_attention_is_a_softmax_of_scaled_cosines() -> None:
    sx, sy, qx = support_set(2)
    embedding = Embedding(5, (6,), batch_norm=False)
    learner = MatchingNet(embedding, scale=4.0, seed=0)
    params = {k.removeprefix("embedding."): v for k, v in learner.params.items()}
    zs = torch.func.functional_call(embedding, params, (sx,))
    zq = torch.func.functional_call(embedding, params, (qx,))
    cosine = torch.nn.functional.cosine_similarity(zq[:, None], zs[None], dim=-1)
    torch.testing.assert_close(learner.fit(sx, sy).attention(qx), torch.softmax(4 * cosine, -1))


def test_full_context_embeddings_depend_on_the_other_support_examples() -> None:
    sx, sy, qx = support_set(3)
    extra_x, extra_y = torch.cat((sx, 2 * sx[:1])), torch.cat((sy, sy[:1]))
    for fce in (False, True):
        # No normalisation, so only FCE can carry context between support examples.
        learner = MatchingNet(Embedding(5, (6,), batch_norm=False), fce=fce, seed=4)
        alone = learner.fit(sx, sy).attention(qx)
        with_extra = learner.fit(extra_x, extra_y).attention(qx)
        # Relative attention among the first seven examples moves only if their
        # embeddings changed with the added eighth one.
        ratio = alone / alone[:, :1]
        ratio_extra = with_extra[:, :7] / with_extra[:, :1]
        assert torch.allclose(ratio, ratio_extra) is not fce
    fce_names = {k for k in learner.params if k.startswith("fce.")}
    assert {"fce.weight_ih_l0", "fce.weight_hh_l0_reverse"} <= fce_names


def test_invalid_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="scale"):
        MatchingNet(Embedding(5, (6,)), scale=0.0)
    with pytest.raises(ValueError, match="embedding"):
        MatchingNet(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query_x"):
        MatchingNet(Embedding(5, (6,))).fit(*support_set(0)[:2]).attention(torch.randn(2, 4))
