-- Delete the whole reservoir, capacity included, atomically.
-- KEYS[1] meta, KEYS[2] marks, KEYS[3] slots, KEYS[4] owners, KEYS[5] counts,
-- KEYS[6] regime_owners, KEYS[7] regime_counts
-- ARGV[1] key prefix of the per-stream sorted sets, ARGV[2] that of the per-regime ones
-- Every stream (regime) that owns a slot has a field in counts (regime_counts), so these are
-- all the sets there are.
for _, stream in ipairs(redis.call('HKEYS', KEYS[5])) do
  redis.call('DEL', ARGV[1] .. stream)
end
for _, regime in ipairs(redis.call('HKEYS', KEYS[7])) do
  redis.call('DEL', ARGV[2] .. regime)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
return 'ok'
