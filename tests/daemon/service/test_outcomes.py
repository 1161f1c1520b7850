"""What an adaptation's outcome becomes: the learner's job, the policy message, the record."""

from __future__ import annotations

import math

import numpy as np
from direction_task import DirectionTask

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.detection import Shift
from adaptd.daemon.core.effects import AdaptationRequest, ShiftEvent
from adaptd.daemon.core.policy import decode_message, encode_message
from adaptd.daemon.core.regimes import RegimeMatch
from adaptd.daemon.learner.messages import AdaptationOutcome
from adaptd.daemon.service.configs import task_models, tasks_of
from adaptd.daemon.service.outcomes import adapt_job, policy_message, record

SETTINGS = load_settings(environ={})
MODELS = {m.name: m for m in task_models(SETTINGS, (*tasks_of(SETTINGS), DirectionTask(5, 10.0)))}


def request(task: str, d: int) -> AdaptationRequest:
    x = np.arange(4 * d, dtype=np.float32).reshape(4, d)
    shift = ShiftEvent(
        "S@in:1:70", "S", Shift(70, 66, ("adwin:returns",), {}), 2, "in", 1, 70, 7, 0.0
    )
    return AdaptationRequest(
        id="S@in:1:70" if task == "return" else "S@in:1:70#direction",
        stream="S",
        shift=shift,
        support_x=x[:3],
        support_y=np.zeros(3, np.float32),
        query_x=x[3:],
        query_y=np.zeros(1, np.float32),
        parent_version=4,
        parent_weights=None,
        first_offset=80,
        last_offset=83,
        ready_wall_time=1.0,
        regime=RegimeMatch(2, True, math.inf, 2),
        start_weights={"w": np.zeros(1, np.float32)},
        task=task,
        model_id="S" if task == "return" else "S/direction",
    )


def outcome(out_dim: int, d: int) -> AdaptationOutcome:
    weights = {
        "layers.0.weight": np.ones((2, d), np.float32),
        "layers.0.bias": np.zeros(2, np.float32),
        "layers.2.weight": np.ones((out_dim, 2), np.float32),
        "layers.2.bias": np.zeros(out_dim, np.float32),
    }
    return AdaptationOutcome("r", True, weights, 1.0, 0.5, 0.8, 0.9, 0.4, 5, False, 0.002, 3, 0.1)


def test_the_learner_gets_the_examples_and_starting_points_only() -> None:
    req = request("return", 9)
    job = adapt_job(req)
    assert (job.request_id, job.task) == (req.id, "return")
    assert job.support_x is req.support_x and job.query_y is req.query_y
    assert job.start_weights is req.start_weights and job.parent_weights is None


def test_the_return_tasks_message_is_as_before_tasks_plus_its_task() -> None:
    req = request("return", 9)
    message = decode_message(
        encode_message(policy_message(req, outcome(1, 9), 5, MODELS["return"], {"a": 1}))
    )
    assert (message.model_id, message.version, message.parent_version) == ("S", 5, 4)
    assert message.architecture == {
        "kind": "mlp",
        "in_dim": 9,
        "hidden": [32, 32],
        "activation": "tanh",
        "output_scale": 0.1,
        "output": "scaled forward return",
    }
    assert message.features["label"]["definition"].startswith("forward log return")
    assert message.task["name"] == "return" and message.task["link"] == "identity"
    assert message.regime is not None and message.regime.ratio is None  # inf is not JSON
    assert message.regime.warm_start is True
    # Named from the adaptation examples' features: their ret_z column reaches 27.
    assert message.regime.name == "extreme event"
    assert message.source == {"topic": "in", "partition": 1, "first_offset": 80, "last_offset": 83}
    assert message.metrics["support_size"] == 3.0 and message.algorithm == {"a": 1}


def test_another_tasks_message_carries_its_model_id_features_and_head() -> None:
    req = request("direction", 3)
    message = policy_message(req, outcome(2, 3), 6, MODELS["direction"], {})
    assert message.model_id == "S/direction" and message.stream == "S"
    assert message.architecture["out_dim"] == 2
    assert message.features["names"] == ["ret_z", "mean_fast_z", "vol_ratio"]
    assert message.task["name"] == "direction"


def test_the_metrics_say_how_far_the_update_moved_and_what_the_trust_region_did() -> None:
    req = request("return", 9)
    plain = policy_message(req, outcome(1, 9), 5, MODELS["return"], {}).metrics
    assert not {"update_distance", "trust_region_active", "trust_region_lifted"} & set(plain)
    unbounded = outcome(1, 9)._replace(update_distance=0.25)
    metrics = policy_message(req, unbounded, 5, MODELS["return"], {}).metrics
    assert metrics["update_distance"] == 0.25 and "trust_region_active" not in metrics
    bounded = unbounded._replace(trust_region=0.05, update_distance=0.05, trust_region_active=True)
    message = decode_message(
        encode_message(policy_message(req, bounded, 5, MODELS["return"], {"trust_region": 0.05}))
    )
    assert message.metrics["update_distance"] == 0.05
    assert (message.metrics["trust_region_active"], message.metrics["trust_region_lifted"]) == (
        1.0,
        0.0,
    )


def test_the_record_says_what_became_of_the_request() -> None:
    rec = record(request("direction", 3), outcome(2, 3), 0, 412)
    assert (rec.stream, rec.task, rec.shift_id, rec.published, rec.version, rec.index) == (
        "S",
        "direction",
        "S@in:1:70",
        False,
        0,
        412,
    )
    assert rec.shift_to_publish_s > 0


def test_a_retirement_message_gives_the_evidence_of_the_test_that_retired() -> None:
    from adaptd.daemon.core.effects import Retired
    from adaptd.daemon.core.validation import Retirement
    from adaptd.daemon.service.outcomes import retirement_message

    weights = {
        "layers.0.weight": np.zeros((2, 9), np.float32),
        "layers.0.bias": np.zeros(2, np.float32),
        "layers.2.weight": np.zeros((1, 2), np.float32),
        "layers.2.bias": np.zeros(1, np.float32),
    }

    def message(verdict: Retirement):
        retired = Retired("S", "return", "S", "in", 0, verdict, "lost", weights)
        return decode_message(encode_message(retirement_message(retired, 8, MODELS["return"], {})))

    by_mean = message(Retirement(7, 120, 0.25, 0.05))
    assert by_mean.metrics["validation_examples"] == 120.0
    assert "validation_lost_on" not in by_mean.metrics
    assert by_mean.validation["retired_version"] == 7 and by_mean.parent_version == 7
    by_sign = message(Retirement(7, 47, 0.4, 8.0, worse=46))
    assert by_sign.metrics["validation_lost_on"] == 46.0
