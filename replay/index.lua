-- File held episodes under their (stream, regime) in the per-regime index: how a reservoir
-- written before that index existed gets it (ReservoirBuffer.open).
--
-- KEYS[1] meta  KEYS[2] slots  KEYS[3] regime_owners  KEYS[4] regime_counts
-- ARGV[1] key prefix of the per-regime sorted sets
-- ARGV[2] '1' to mark the reservoir as indexed (meta field regime_index) after this call
-- ARGV[3..] pairs: slot index, '<stream>:<regime>' of the episode the client read there
--
-- A slot that already has a regime owner was indexed by an add since the client read it (or
-- by another daemon's pass), and a slot beyond the held ones is empty: both are skipped, so
-- the pass is idempotent and safe next to concurrent adds.

local slots, regime_owners, regime_counts = KEYS[2], KEYS[3], KEYS[4]
local indexed = 0
for i = 3, #ARGV, 2 do
  local field, regime = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', slots, field) == 1 and redis.call('HEXISTS', regime_owners, field) == 0 then
    redis.call('HSET', regime_owners, field, regime)
    redis.call('ZADD', ARGV[1] .. regime, tonumber(field), field)
    redis.call('HINCRBY', regime_counts, regime, 1)
    indexed = indexed + 1
  end
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'regime_index', '1')
end
return indexed
