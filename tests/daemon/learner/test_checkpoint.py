"""The checkpoint's format: a state dict comes back with its types and tensors, and anything
but such a checkpoint is refused without being unpickled."""

from __future__ import annotations

import gc
import io

import msgpack
import pytest
import torch

from adaptd.daemon.learner.checkpoint import CheckpointError, dumps, loads
from adaptd.daemon.learner.messages import CHECKPOINT_MAGIC


def test_a_state_dict_comes_back_with_its_types_and_tensors() -> None:
    w = torch.randn(3, 4)
    state = {
        "format": 3,
        "params": {"w": w, "view": w[:, 1], "step": torch.tensor(7.0)},
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(3, 4)}},
            "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0], "x": None}],
        },
        "names": ["a", "b"],
        "flag": True,
        "big": 2**40,
    }
    back = loads(dumps(state))
    assert back.keys() == state.keys()
    assert torch.equal(back["params"]["w"], w) and torch.equal(back["params"]["view"], w[:, 1])
    assert back["params"]["step"].shape == () and back["params"]["step"].item() == 7.0
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert list(back["optimizer"]["state"]) == [0]  # an int key stays an int
    assert back["names"] == ["a", "b"] and back["flag"] is True and back["big"] == 2**40
    back["params"]["w"].add_(1.0)  # its own storage, writable
    assert not torch.equal(back["params"]["w"], w)


def test_writing_and_reading_hold_no_tensor_in_a_garbage_cycle() -> None:
    # A nested function that calls itself is a cycle, and held every tensor it saw until a
    # full collection. (safetensors' own save leaves two small objects of its own.)
    state = {"w": torch.ones(64, 64), "groups": [{"betas": (0.9, 0.999)}]}
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        loads(dumps(state))
        gc.collect()
        held = [
            o
            for o in gc.garbage
            if isinstance(o, torch.Tensor)
            or (type(o) is dict and any(isinstance(v, torch.Tensor) for v in o.values()))
        ]
        assert held == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


def test_what_a_state_dict_does_not_hold_is_not_written() -> None:
    with pytest.raises(CheckpointError, match="holds no"):
        dumps({"f": print})


def test_anything_else_is_refused() -> None:
    good = dumps({"w": torch.ones(2)})
    header = len(CHECKPOINT_MAGIC) + 8
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    for data, why in [
        (buf.getvalue(), "not a checkpoint of this format"),
        (CHECKPOINT_MAGIC + (10**6).to_bytes(8, "big"), "cut short"),
        (good[:-4], "tensors cannot be read"),
        (good[:header] + b"\xc1" + good[header + 1 :], "malformed"),
    ]:
        with pytest.raises(CheckpointError, match=why):
            loads(data)
    body = msgpack.packb(msgpack.ExtType(9, b""))
    tensors = good[header + int.from_bytes(good[len(CHECKPOINT_MAGIC) : header], "big") :]
    with pytest.raises(CheckpointError, match="unknown extension code 9"):
        loads(CHECKPOINT_MAGIC + len(body).to_bytes(8, "big") + body + tensors)
