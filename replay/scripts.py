"""The replay stores' Lua scripts as redis-py ``Script`` objects, and the batch form that runs
one script for each item of a batch in a single call.

redis-py's ``Script`` owns the script cache: it calls EVALSHA and, on NOSCRIPT (a restarted
or flushed Redis, a failover), loads the source and calls again, so the stores never load
scripts themselves. A batch is *one* script call rather than EVALSHAs queued in a MULTI/EXEC
pipeline, because a pipeline that runs a ``Script`` asks the server ``SCRIPT EXISTS`` in a
round trip of its own before every EXEC (``Pipeline.load_scripts`` in redis-py); one call
keeps a batch to one round trip. It is as atomic as MULTI/EXEC: Redis runs one script at a
time, and writes its effects to the AOF and replicas as one MULTI/EXEC block.

:class:`BatchScript` wraps an item script, unchanged, in a Lua function and calls it once
per item, in order, with that item's KEYS and ARGV; an error reply of an item (or an error
raised by a command in it) ends the batch there, the items before it applied, as they
would be one call at a time.

>>> print(lua_source("holdout.lua").splitlines()[0])
-- Offer one episode to the held-out store: keep it if it is among the first episodes of its
>>> batch_args([(["k1", "k2"], ["a"]), (["k3"], ["b", "c"])])
(['k1', 'k2', 'k3'], [2, 2, 1, 1, 2, 'a', 'b', 'c'])
>>> script = BatchScript(client, lua_source("reservoir.lua"))   # doctest: +SKIP
>>> await script([(keys_of_first, args_of_first), ...])          # doctest: +SKIP
[b'stored', b'duplicate', ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT, KeyT

__all__ = ["BatchScript", "Call", "batch_args", "lua_source"]

Call = tuple[Sequence[KeyT], Sequence[EncodableT]]
"""One item of a batch: the KEYS and the ARGV its item script is called with."""

# The item script becomes the body of item(KEYS, ARGV): its own KEYS and ARGV are then the
# item's, and its top-level returns return from the function. Redis's Lua is 5.1 (unpack).
_BATCH = """\
-- The batch form of the item script inside item(): one call per item, in order.
-- ARGV[1] the number of items m; ARGV[2 .. 1 + 2m] per item, the number of its keys and of
-- its arguments; then the items' arguments, item after item. KEYS: the items' keys, likewise.
-- Returns the items' replies in order, or the first error reply (the items before it stay).
local function item(KEYS, ARGV)
{body}
end
local m = tonumber(ARGV[1])
local key_at, arg_at = 0, 1 + 2 * m
local out = {{}}
for i = 1, m do
  local nkeys, nargs = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local reply = item({{unpack(KEYS, key_at + 1, key_at + nkeys)}},
    {{unpack(ARGV, arg_at + 1, arg_at + nargs)}})
  if type(reply) == 'table' and reply.err then
    return reply
  end
  out[i] = reply
  key_at, arg_at = key_at + nkeys, arg_at + nargs
end
return out
"""


_INCLUDE = "--#include "


def lua_source(name: str) -> str:
    """The text of the Lua script ``name`` shipped in this package, with each line
    ``--#include other.lua`` replaced by that script's text (Redis loads one text per script,
    so what two scripts share is written once and pasted in here)."""
    text = resources.files(__package__).joinpath(name).read_text()
    return "".join(
        lua_source(line.removeprefix(_INCLUDE).strip()) if line.startswith(_INCLUDE) else line
        for line in text.splitlines(keepends=True)
    )


def batch_args(calls: Sequence[Call]) -> tuple[list[KeyT], list[EncodableT]]:
    """The KEYS and ARGV of one batch call for ``calls``, laid out as the batch script reads
    them."""
    keys: list[KeyT] = []
    counts: list[EncodableT] = [len(calls)]
    args: list[EncodableT] = []
    for item_keys, item_args in calls:
        counts += [len(item_keys), len(item_args)]
        keys += item_keys
        args += item_args
    return keys, counts + args


class BatchScript:
    """An item script run for every item of a batch in one atomic call (one round trip).

    Parameters
    ----------
    client
        The ``redis.asyncio.Redis`` the script is registered with (no I/O here).
    item
        The item script's source (e.g. ``lua_source("reservoir.lua")``): a script that
        reads its own ``KEYS`` and ``ARGV`` and returns a reply, as if called alone.
    """

    def __init__(self, client: aioredis.Redis, item: str) -> None:
        self.script = client.register_script(_BATCH.format(body=item))

    async def __call__(self, calls: Sequence[Call]) -> list[Any]:
        """The item replies in order; raises the first item's error reply, if any."""
        if not calls:
            return []
        keys, args = batch_args(calls)
        return await self.script(keys=keys, args=args)
