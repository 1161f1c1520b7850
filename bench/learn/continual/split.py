"""Split digits and split Fashion-MNIST: 5 tasks of 2 classes, task- and class-incremental.

Tasks are classes (0, 1), (2, 3), ..., (8, 9) of each data set (:func:`.data.split_tasks`):
task-incremental ("task", the task identity picks the task's two outputs at training and
test time) and class-incremental ("class", one 10-way head, no task identity). Digits use all
their training images (about 290 a task) and Fashion-MNIST a seeded 2000 a task (of 12,000);
the test images of a task's classes are its test set.

Network and training, the same for every strategy and both scenarios: ``PolicyNet(in,
(100, 100), relu, out_dim=10)``, Adam (restarted at each task) with step 0.001, batches of
32, 5 passes over each task. Runs: naive fine-tuning, every registered strategy (options from
:mod:`.configs`, memory budget 200 examples) and joint training (all tasks mixed, each example
keeping its task's outputs in the task-incremental scenario). The tunable value of a strategy
is chosen per data set and scenario on a validation split of the training images (20 %,
stratified); the published reference numbers of :mod:`.references` are in the result with
their sources and the setting differences.

Time plan (2 workers, one torch thread each; single runs measured): a 5-task run takes 0.1 to
1.5 s on digits and 2 to 7 s on Fashion-MNIST (GEM and generative replay the slowest), joint
training about 1 s; with about 30 tuning runs per setting, about 300 worker-seconds: under 3
minutes.

Examples
--------
>>> SETTINGS[:2]
('digits/task', 'digits/class')
"""

from __future__ import annotations

from typing import Any

from . import configs, data, jobs, references
from .runs import Setup
from .tables import label, notes, strategy_table

__all__ = ["PROTOCOL", "QUICK", "SETTINGS", "run", "summary", "tasks_for"]

SETTINGS = ("digits/task", "digits/class", "fashion_mnist/task", "fashion_mnist/class")
PROTOCOL: dict[str, Any] = {
    "tasks": 5,
    "setup": {
        "hidden": [100, 100],
        "activation": "relu",
        "epochs": 5,
        "batch_size": 32,
        "lr": 0.001,
        "optimizer": "adam",
    },
    "train_size": {"digits": None, "fashion_mnist": 2000},
    "validation_fraction": 0.2,
    "datasets": list(data.DATASETS),
    "workers": 2,
}
QUICK: dict[str, Any] = {
    **PROTOCOL,
    "setup": {**PROTOCOL["setup"], "hidden": [32], "epochs": 1},
    "train_size": {"digits": 60, "fashion_mnist": 60},
    "datasets": ["digits"],
    "workers": 1,
}
KIND = "split"
CRITERION = "final average accuracy on the validation split of the training images"


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Every strategy, naive and joint in the four settings (module docstring)."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    datasets = {name: jobs.dataset_status(name)[0] for name in config["datasets"]}
    settings = [s for s in SETTINGS if datasets.get(s.split("/")[0], {}).get("available")]
    tuning, records, joints = jobs.tune_then_run_section(
        _job, settings, config, quick=quick, seed=seed, kind=KIND, criterion=CRITERION
    )
    return {
        "protocol": config,
        "memory_budget": configs.MEMORY[KIND],
        "datasets": datasets,
        "settings": {
            s: {"joint": joint, "tuning": tuning[s], "strategies": records[s]}
            for s, joint in zip(settings, joints, strict=True)
        },
        "references": {
            "source": references.AVALANCHE,
            "split_mnist": references.SPLIT_MNIST,
            "differences": references.SETTING_DIFFERENCES,
        },
    }


def tasks_for(setting: str, config: dict[str, Any], seed: int, *, validation: bool) -> list[Any]:
    """The 5 tasks of ``setting`` ("digits/class", ...); ``validation``: built from the
    training images only (the held-out 20 % as test sets)."""
    dataset, scenario = setting.split("/")
    images = data.load(dataset)
    if validation:
        images = images.validation(config["validation_fraction"], seed)
    return data.split_tasks(
        images,
        scenario,  # type: ignore[arg-type]
        n_tasks=config["tasks"],
        train_size=config["train_size"][dataset],
        seed=seed,
    )


def _job(job: dict[str, Any]) -> dict[str, Any]:
    config, seed, setting = job["config"], job["seed"], job["setting"]
    in_dim = data.load(setting.split("/")[0]).in_dim
    setup = Setup.from_table(config["setup"], in_dim=in_dim, out_dim=10, seed=seed)
    tasks = tasks_for(setting, config, seed, validation=job["job"] == "tune")
    return jobs.run_on_tasks(job, tasks, setup)


def summary(result: dict[str, Any]) -> str:
    """Markdown: protocol, ACC per strategy and scenario, then every setting's full table."""
    p, s = result["protocol"], result["protocol"]["setup"]
    lines = [
        f"5 tasks of 2 classes; PolicyNet {tuple(s['hidden'])} {s['activation']}, 10 outputs, "
        f"{s['optimizer']} step {s['lr']}, batches of {s['batch_size']}, {s['epochs']} passes a "
        f"task; Fashion-MNIST {p['train_size']['fashion_mnist']} training images a task. "
        f"Memory budget {result['memory_budget']} examples. Tunable values chosen on a "
        f"{p['validation_fraction']:.0%} validation split of the training images.",
        "",
    ]
    settings = result["settings"]
    for name, d in result["datasets"].items():
        if not d["available"]:
            lines.append(f"{name}: not available ({d['reason']}).")
    if settings:
        names = list(next(iter(settings.values()))["strategies"])
        lines += [
            "| strategy | " + " | ".join(settings) + " |",
            "|---" + "|---:" * len(settings) + "|",
        ]
        for n in [*names, "joint"]:
            cells = []
            for st in settings.values():
                r = st["joint"] if n == "joint" else st["strategies"][n]
                acc = (
                    r.get("average_accuracy")
                    if n == "joint"
                    else r.get("metrics", {}).get("average_accuracy")
                )
                cells.append("error" if acc is None else f"{acc:.3f}")
            lines.append(f"| {label(n) if n != 'joint' else n} | " + " | ".join(cells) + " |")
    refs = result["references"]
    lines += ["", "Published split MNIST (final ACC; " + refs["source"] + "):", ""]
    lines += ["| scenario | strategy | paper | Avalanche | setting |", "|---|---|---:|---:|---|"]
    for r in refs["split_mnist"]:
        lines.append(
            f"| {r['scenario']} | {r['strategy']} | {r['acc']:.2f} | {r['avalanche']:.2f} | "
            f"{r['paper']}; {r['setting']} |"
        )
    lines += ["", refs["differences"]]
    for name, st in settings.items():
        lines += [
            "",
            f"**{name}**",
            "",
            *strategy_table(st["strategies"], st["joint"], target=False),
        ]
        lines += notes(st["strategies"], st["tuning"])
    return "\n".join(lines)
