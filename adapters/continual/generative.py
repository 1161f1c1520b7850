"""Deep generative replay (Shin et al., 2017): rehearse past tasks on inputs a generator
imagines, labelled by the model as it was before the current task.

One small :class:`~adaptd.adapters.continual.vae.VAE` models the inputs of every task seen.
After each task it is trained on that task's inputs mixed with its own samples from before the
task (a frozen copy generates them), the two weighted ``1 / T`` and ``(T - 1) / T`` for the
``T``-th task, so it keeps generating earlier tasks' inputs without storing any of them.

During a task, the strategy's ``penalty`` is the loss of the current weights on a generated
batch whose targets come from the previous solver, a snapshot of the weights taken when the
task began: its softmax (``targets="soft"``) or arg-max ("hard") over a classifier's outputs,
its predictions for a regression. The penalty is scaled by the fraction of tasks that are past,
``(T - 1) / T``, as the paper mixes real and replayed losses. In the task-incremental setting a
generated input gets a uniformly drawn past task, whose classes restrict both the targets and
the loss.

The generator's weights and its Adam optimizer are internal state (a plain module with
``torch.optim.Adam``), saved with the snapshot in ``state_dict``.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual import ContinualModel, ContinualTask
>>> net = PolicyNet(3, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
>>> y = (x[:, 0] > 0).long()
>>> replay = GenerativeReplay(latent=2, hidden=16, epochs=2, batch_size=16, seed=0)
>>> first, second = ContinualTask(0, x, y, x, y), ContinualTask(1, x, 1 - y, x, 1 - y)
>>> replay.penalty(model, model.params, x, y, first) is None       # nothing to rehearse yet
True
>>> replay.after_task(model, first)
>>> replay.before_task(model, second)
>>> loss = replay.penalty(model, model.params, x, 1 - y, second)
>>> loss.shape, bool(loss > 0)
(torch.Size([]), True)

References
----------
Shin, H., Lee, J. K., Kim, J. & Kim, J. (2017). Continual learning with deep generative
replay. NeurIPS.
van de Ven, G. M., Siegelmann, H. T. & Tolias, A. S. (2020). Brain-inspired replay for
continual learning with artificial neural networks. Nature Communications 11.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..checks import non_negative, one_of, positive, positive_int
from ..fast_weights import Params
from .importance import copy_params
from .protocol import ContinualModel, ContinualTask
from .rehearsal import SeededRehearsal, replay_losses, restrict_to_tasks
from .vae import LIKELIHOODS, VAE, Likelihood

__all__ = ["GenerativeReplay"]

TARGETS = ("soft", "hard")


class GenerativeReplay(SeededRehearsal):
    """Deep generative replay with a VAE generator.

    Parameters
    ----------
    latent
        Latent dimensions of the VAE.
    hidden
        Hidden width of its encoder and decoder.
    epochs
        Passes over each task's inputs when training the VAE.
    batch_size
        Examples per VAE step, and generated examples per replay batch.
    lr
        Adam step size of the VAE.
    likelihood
        "gaussian" (standardised inputs) or "bernoulli" (inputs in [0, 1]).
    targets
        "soft" (the previous solver's probabilities) or "hard" (its arg-max); a regression
        always uses the predictions.
    weight
        Scale of the replay loss, on top of the fraction of past tasks.
    seed
        Seed of the VAE's weights and of every draw.
    """

    name: ClassVar[str] = "generative"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {"epochs": 2, "batch_size": 16},
        {"epochs": 1, "batch_size": 16, "targets": "hard"},
    )

    def __init__(
        self,
        *,
        latent: int = 8,
        hidden: int = 64,
        epochs: int = 5,
        batch_size: int = 64,
        lr: float = 3e-3,
        likelihood: Likelihood = "gaussian",
        targets: Literal["soft", "hard"] = "soft",
        weight: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.latent = positive_int("latent", latent)
        self.hidden = positive_int("hidden", hidden)
        self.epochs = positive_int("epochs", epochs)
        self.batch_size = positive_int("batch_size", batch_size)
        self.lr = positive("lr", lr)
        self.likelihood: Likelihood = one_of("likelihood", likelihood, LIKELIHOODS)
        self.targets = one_of("targets", targets, TARGETS)
        self.weight = non_negative("weight", weight)
        self.seed = seed
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._vae: VAE | None = None
        self._optimizer: torch.optim.Adam | None = None
        self._solver: Params | None = None  # the weights the replay targets come from

    @property
    def vae(self) -> VAE | None:
        """The generator (None before the first task ends)."""
        return self._vae

    def _build(self, in_dim: int) -> None:
        self._vae = VAE(in_dim, self.latent, self.hidden, self.likelihood, seed=self.seed)
        self._optimizer = torch.optim.Adam(self._vae.parameters(), lr=self.lr)

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Snapshot the weights: the previous solver that labels the replayed inputs."""
        if self._vae is not None:
            self._solver = copy_params(model.params)

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """The replay loss on a generated batch, scaled by ``weight`` and the fraction of past
        tasks; None before any task has ended."""
        past = self._past(task)
        if self._vae is None or self._solver is None or not past:
            return None
        generated = self._vae.sample(self.batch_size, self._generator)
        pick = torch.randint(len(past), (self.batch_size,), generator=self._generator)
        ids = torch.tensor(past, dtype=torch.int64)[pick]
        with torch.no_grad():
            out = model.output(self._solver, generated)
            if model.loss == "cross_entropy":
                out, _ = restrict_to_tasks(out, ids, self._classes)
                out = torch.softmax(out, -1) if self.targets == "soft" else out.argmax(-1)
        losses = replay_losses(model, params, generated, out, ids, self._classes)
        fraction = len(past) / (len(past) + 1)
        return self.weight * fraction * losses.mean()

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Train the VAE on the task's inputs mixed with its own samples of the past tasks."""
        if task.train_x.ndim != 2:
            raise ValueError(f"task inputs must be (n, features), got {tuple(task.train_x.shape)}")
        x = task.train_x.detach()
        if self.likelihood == "bernoulli" and bool(((x < 0) | (x > 1)).any()):
            raise ValueError("likelihood='bernoulli' needs inputs in [0, 1]; use 'gaussian'")
        if self._vae is None:
            self._build(x.shape[1])
        past = len(self._past(task))
        previous = copy.deepcopy(self._vae).eval() if past else None
        share = 1.0 / (past + 1)
        vae, optimizer = self._vae, self._optimizer
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=self._generator)
            for lo in range(0, len(x), self.batch_size):
                batch = x[order[lo : lo + self.batch_size]]
                loss = -vae.elbo(batch, self._generator).mean()
                if previous is not None:
                    recalled = previous.sample(len(batch), self._generator)
                    replayed = -vae.elbo(recalled, self._generator).mean()
                    loss = share * loss + (1.0 - share) * replayed
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self._learned(task)
        self._solver = copy_params(model.params)

    def state_dict(self) -> dict[str, Any]:
        vae = self._vae
        return {
            **super().state_dict(),
            "in_dim": None if vae is None else vae.in_dim,
            "vae": None if vae is None else {k: v.clone() for k, v in vae.state_dict().items()},
            "optimizer": None if vae is None else copy.deepcopy(self._optimizer.state_dict()),
            "solver": copy_params(self._solver),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._vae, self._optimizer = None, None
        if state["vae"] is not None:
            self._build(int(state["in_dim"]))
            self._vae.load_state_dict(state["vae"])
            self._optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self._solver = copy_params(state["solver"])
