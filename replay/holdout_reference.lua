-- Record reference losses of held-out episodes: the first one recorded for an episode stays.
--
-- KEYS[1] lru (not read: it routes the script to the store's hash slot in a Redis Cluster;
--         the hashes below share its hash tag)
-- ARGV[1] key prefix of the episodes hashes   ARGV[2] key prefix of the reference hashes
-- ARGV[3..] triples: '<stream>:<regime>', episode id, loss (a decimal float)
--
-- A loss is kept only while its episode is still held: a regime evicted since it was read
-- leaves no orphaned reference behind. Returns how many references were new.

local added = 0
for i = 3, #ARGV, 3 do
  local regime, id, loss = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', ARGV[1] .. regime, id) == 1 then
    added = added + redis.call('HSETNX', ARGV[2] .. regime, id, loss)
  end
end
return added
