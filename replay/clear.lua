-- Delete the whole reservoir, capacity included, atomically.
-- KEYS[1] meta, KEYS[2] marks, KEYS[3] slots, KEYS[4] owners, KEYS[5] counts
-- ARGV[1] key prefix of the per-stream sorted sets
-- Every stream that owns a slot has a field in counts, so these are all the sets there are.
for _, stream in ipairs(redis.call('HKEYS', KEYS[5])) do
  redis.call('DEL', ARGV[1] .. stream)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 'ok'
