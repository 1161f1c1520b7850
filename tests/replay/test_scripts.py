"""BatchScript against the real Redis: each item's script sees its own KEYS and ARGV, replies
come back in order, an error ends the batch with the items before it applied, a batch is one
round trip, and a flushed script cache is reloaded by redis-py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from replay_support import CountingClient

from adaptd.replay.scripts import BatchScript, batch_args, lua_source

# Appends every argument to the first key; answers its key count, its argument count and its
# last key, or an error reply for the argument 'bad'.
ITEM = """
for _, value in ipairs(ARGV) do
  if value == 'bad' then
    return redis.error_reply('ERR bad item ' .. KEYS[1])
  end
  redis.call('RPUSH', KEYS[1], value)
end
return {#KEYS, #ARGV, KEYS[#KEYS]}
"""


def test_batch_args_lay_the_items_out_after_their_counts() -> None:
    keys, args = batch_args([(["a", "b"], ["1"]), ([], []), (["c"], ["2", "3", "4"])])
    assert keys == ["a", "b", "c"]
    assert args == [3, 2, 1, 0, 0, 1, 3, "1", "2", "3", "4"]
    assert batch_args([]) == ([], [0])


def test_lua_source_reads_the_scripts_shipped_in_the_package() -> None:
    assert "Algorithm R" in lua_source("reservoir.lua")
    for name in ("reservoir.lua", "holdout.lua"):  # the shared comparison pasted in, once
        text = lua_source(name)
        assert text.count("local function offset_greater(a, b)") == 1
        assert "--#include" not in text
    with pytest.raises(FileNotFoundError):
        lua_source("missing.lua")


async def test_an_empty_batch_needs_no_redis() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1)  # nothing listens there
    assert await BatchScript(dead, ITEM)([]) == []


@pytest.mark.integration
async def test_each_item_runs_with_its_own_keys_and_arguments_in_order(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    a, b = f"{key_prefix}:a", f"{key_prefix}:b"
    script = BatchScript(redis_client, ITEM)
    replies = await script([([a], ["1", "2"]), ([b, a], ["3"]), ([a], [])])
    assert replies == [[1, 2, a.encode()], [2, 1, a.encode()], [1, 0, a.encode()]]
    assert await redis_client.lrange(a, 0, -1) == [b"1", b"2"]
    assert await redis_client.lrange(b, 0, -1) == [b"3"]


@pytest.mark.integration
async def test_an_error_ends_the_batch_with_the_items_before_it_applied(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    a, b = f"{key_prefix}:a", f"{key_prefix}:b"
    script = BatchScript(redis_client, ITEM)
    with pytest.raises(ResponseError, match=f"bad item {b}"):
        await script([([a], ["1"]), ([b], ["2", "bad"]), ([a], ["3"])])
    assert await redis_client.lrange(a, 0, -1) == [b"1"]
    assert await redis_client.lrange(b, 0, -1) == [b"2"]  # the item's own writes stay too
    # An error raised by a command (not a reply) ends the batch the same way.
    await redis_client.set(b, "not a list")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await script([([a], ["4"]), ([b], ["5"]), ([a], ["6"])])
    assert await redis_client.lrange(a, 0, -1) == [b"1", b"4"]


@pytest.mark.integration
async def test_a_batch_is_one_round_trip_and_survives_a_flushed_script_cache(
    counting_client: Callable[[], CountingClient],
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
    key_prefix: str,
) -> None:
    counting = counting_client()
    a = f"{key_prefix}:a"
    script = BatchScript(counting.client, ITEM)
    await counting.client.ping()  # connect first
    await counting.client.script_flush()
    counting.sends = 0
    assert len(await script([([a], ["1"])] * 50)) == 50
    assert counting.sends == 3  # EVALSHA, NOSCRIPT -> SCRIPT LOAD, EVALSHA again
    counting.sends = 0
    assert len(await script([([a], ["2"])] * 50)) == 50
    assert counting.sends == 1
    assert await redis_client.llen(a) == 100
