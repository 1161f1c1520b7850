-- Offer one episode to the held-out store: keep it if it is among the first episodes of its
-- (stream, regime), evicting the least recently offered regime beyond the cap.
-- Everything below runs atomically, so the per-regime cap, the LRU order and the episodes
-- can never disagree, whatever the number of concurrent writers.
--
-- KEYS[1] meta      hash        tick (a counter that orders offers)
-- KEYS[2] lru       sorted set  '<stream>:<regime>' -> tick of its latest offer
-- KEYS[3] episodes  hash        episode id -> encoded episode, of ARGV[1]
-- ARGV[1] '<stream>:<regime>'   ARGV[2] episode id   ARGV[3] encoded episode
-- ARGV[4] per_regime (decimal, >= 1)                 ARGV[5] max_regimes (decimal, >= 1)
-- ARGV[6] key prefix of the episodes hashes          ARGV[7] key prefix of the reference hashes
--
-- Returns 'held' (the episode is, or already was, held out: keep it from training) or
-- 'passed' (its regime already holds per_regime episodes: it may be trained on).
-- An evicted regime's hashes are named here, as in reservoir.lua; they share the hash tag.

local meta, lru, episodes = KEYS[1], KEYS[2], KEYS[3]
local regime, id, blob = ARGV[1], ARGV[2], ARGV[3]
local per_regime, max_regimes = tonumber(ARGV[4]), tonumber(ARGV[5])
local episodes_prefix, reference_prefix = ARGV[6], ARGV[7]

local tick = redis.call('HINCRBY', meta, 'tick', 1)
if redis.call('HEXISTS', episodes, id) == 1 then
  -- A redelivery of a held episode: still held, so it stays out of the reservoir.
  redis.call('ZADD', lru, tick, regime)
  return 'held'
end
if redis.call('HLEN', episodes) >= per_regime then
  redis.call('ZADD', lru, 'XX', tick, regime)
  return 'passed'
end
redis.call('HSET', episodes, id, blob)
redis.call('ZADD', lru, tick, regime)
while redis.call('ZCARD', lru) > max_regimes do
  local oldest = redis.call('ZRANGE', lru, 0, 0)[1]
  redis.call('ZREM', lru, oldest)
  redis.call('DEL', episodes_prefix .. oldest, reference_prefix .. oldest)
end
return 'held'
