-- Offer one episode to the held-out store: keep it if it is among the first episodes of its
-- (stream, regime), evicting the least recently offered regime beyond the cap.
-- Everything below runs atomically, so the per-regime cap, the LRU order and the episodes
-- can never disagree, whatever the number of concurrent writers.
--
-- KEYS[1] meta      hash        tick (a counter that orders offers)
-- KEYS[2] lru       sorted set  '<stream>:<regime>' -> tick of its latest offer
-- KEYS[3] episodes  hash        episode id -> encoded episode, of ARGV[1]
-- KEYS[4] ids       hash        episode id -> '<stream>:<regime>', of every held episode
-- KEYS[5] marks     hash        the reservoir's: source -> largest last_offset it was offered
-- ARGV[1] '<stream>:<regime>'   ARGV[2] episode id   ARGV[3] encoded episode
-- ARGV[4] per_regime (decimal, >= 1)                 ARGV[5] max_regimes (decimal, >= 1)
-- ARGV[6] key prefix of the episodes hashes          ARGV[7] key prefix of the reference hashes
-- ARGV[8] the episode's source                      ARGV[9] its last_offset (canonical decimal)
--
-- An episode is the same episode whatever regime it is offered under: events processed again
-- after a crash can be classified into another regime than the first time (the live policy,
-- and so the error channel's shifts, differ), and the episode must not then be held under one
-- regime and trained on under another. So a held id is held under any regime, and an episode
-- the reservoir was already offered (its source's mark is at or past its last offset) passes.
--
-- Returns 'held' (the episode is, or already was, held out: keep it from training) or
-- 'passed' (its regime already holds per_regime episodes: it may be trained on).
-- An evicted regime's hashes are named here, as in reservoir.lua; they share the hash tag.

local meta, lru, episodes, ids, marks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local regime, id, blob = ARGV[1], ARGV[2], ARGV[3]
local per_regime, max_regimes = tonumber(ARGV[4]), tonumber(ARGV[5])
local episodes_prefix, reference_prefix = ARGV[6], ARGV[7]
local source, last_offset = ARGV[8], ARGV[9]

--#include offsets.lua

local tick = redis.call('HINCRBY', meta, 'tick', 1)
-- (A store written before the ids hash existed knows its held episodes only per regime.)
local held_as = redis.call('HGET', ids, id)
if not held_as and redis.call('HEXISTS', episodes, id) == 1 then
  held_as = regime
end
if held_as then
  -- A redelivery of a held episode: still held (under the regime it was held as), so it
  -- stays out of the reservoir.
  redis.call('ZADD', lru, 'XX', tick, held_as)
  return 'held'
end
local mark = redis.call('HGET', marks, source)
if mark and not offset_greater(last_offset, mark) then
  return 'passed'
end
if redis.call('HLEN', episodes) >= per_regime then
  redis.call('ZADD', lru, 'XX', tick, regime)
  return 'passed'
end
redis.call('HSET', episodes, id, blob)
redis.call('HSET', ids, id, regime)
redis.call('ZADD', lru, tick, regime)
while redis.call('ZCARD', lru) > max_regimes do
  local oldest = redis.call('ZRANGE', lru, 0, 0)[1]
  redis.call('ZREM', lru, oldest)
  for _, gone in ipairs(redis.call('HKEYS', episodes_prefix .. oldest)) do
    redis.call('HDEL', ids, gone)
  end
  redis.call('DEL', episodes_prefix .. oldest, reference_prefix .. oldest)
end
return 'held'
