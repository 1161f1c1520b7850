-- Offer one episode to the reservoir: idempotency check, Algorithm R, stratification indexes.
-- Everything below runs atomically (Redis executes one script at a time), so the watermark,
-- the seen count, the slot contents and the per-stream and per-regime indexes can never
-- disagree, whatever the number of concurrent writers.
--
-- KEYS[1] meta     hash   capacity, seen
-- KEYS[2] marks    hash   source -> largest last_offset accepted from that source
-- KEYS[3] slots    hash   slot index -> encoded episode
-- KEYS[4] owners   hash   slot index -> stream of the episode in that slot
-- KEYS[5] counts   hash   stream -> number of slots it owns (field absent when 0)
-- KEYS[6] the sorted set of slot indices owned by ARGV[4] (member = score = slot index)
-- KEYS[7] regime_owners  hash  slot index -> '<stream>:<regime>' of the episode in that slot
-- KEYS[8] regime_counts  hash  '<stream>:<regime>' -> number of slots it owns (absent when 0)
-- KEYS[9] the sorted set of slot indices owned by ARGV[8]
-- ARGV[1] capacity (decimal)     ARGV[2] source        ARGV[3] last_offset (decimal, >= 0)
-- ARGV[4] stream                 ARGV[5] encoded episode
-- ARGV[6] u, a uniform float in [0, 1) drawn by the client
-- ARGV[7] key prefix of the per-stream sorted sets (the old owner's set is ARGV[7] .. stream)
-- ARGV[8] '<stream>:<regime>' of the episode
-- ARGV[9] key prefix of the per-regime sorted sets
--
-- The evicted owner's sets are only known here, so their names are built in the script rather
-- than passed in KEYS. It carries the same {hash tag} as KEYS, so in a Redis Cluster it
-- lives in the same hash slot and the script stays a single-slot script.
--
-- The random number comes from the client, not from math.random: before Redis 7 scripts
-- were replicated verbatim, so Redis reseeded Lua's PRNG with the same seed before every
-- script call and math.random() returned the same first value on every add; the
-- replacement decision would then be identical for every episode and the reservoir would
-- not be a uniform sample. A client-drawn u is uniform on every Redis version, and a seeded
-- client rng makes a run reproducible and testable against a reference implementation.
--
-- Returns 'stored', 'skipped' or 'duplicate'; a capacity mismatch is an error reply.

local meta, marks, slots, owners, counts, stream_set =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local regime_owners, regime_counts, regime_set = KEYS[7], KEYS[8], KEYS[9]
local capacity_arg, source, last_offset, stream, blob, u, set_prefix =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local regime, regime_prefix = ARGV[8], ARGV[9]

--#include offsets.lua

local stored_capacity = redis.call('HGET', meta, 'capacity')
if not stored_capacity then
  redis.call('HSET', meta, 'capacity', capacity_arg)
elseif stored_capacity ~= capacity_arg then
  return redis.error_reply('ERR reservoir capacity mismatch: stored ' .. stored_capacity
    .. ', requested ' .. capacity_arg)
end
local capacity = tonumber(capacity_arg)

local mark = redis.call('HGET', marks, source)
if mark and not offset_greater(last_offset, mark) then
  return 'duplicate'
end
redis.call('HSET', marks, source, last_offset)
local n = redis.call('HINCRBY', meta, 'seen', 1)

-- Algorithm R: the n-th item takes a slot with probability capacity / n, a uniformly
-- chosen one, which keeps every item seen so far in the reservoir with equal probability.
local slot
if n <= capacity then
  slot = n - 1
else
  slot = math.floor(u * n)
  if slot >= capacity then
    return 'skipped'
  end
end
local field = string.format('%d', slot)

-- Move the slot from its old owner's index to the new one's (by stream and by regime).
local function reown(owner_hash, count_hash, prefix, new_owner, new_set)
  local old = redis.call('HGET', owner_hash, field)
  if old then
    redis.call('ZREM', prefix .. old, field)
    if redis.call('HINCRBY', count_hash, old, -1) <= 0 then
      redis.call('HDEL', count_hash, old)
    end
  end
  redis.call('HSET', owner_hash, field, new_owner)
  redis.call('ZADD', new_set, slot, field)
  redis.call('HINCRBY', count_hash, new_owner, 1)
end

redis.call('HSET', slots, field, blob)
reown(owners, counts, set_prefix, stream, stream_set)
reown(regime_owners, regime_counts, regime_prefix, regime, regime_set)
return 'stored'
