-- Draw distinct episodes from the reservoir in one atomic read.
--
-- KEYS[1] meta   hash  capacity, seen
-- KEYS[2] slots  hash  slot index -> encoded episode
-- KEYS[3..] (stratified only) the sorted sets of slot indices of the S strata, one per
--           stratum: per-stream sets ('stratified' sampling) or per-(stream, regime) sets
--           ('regime' sampling, which uses this same branch)
-- ARGV[1] 'uniform' or 'stratified'
-- uniform:    ARGV[2..] one uniform float in [0, 1) per episode wanted
-- stratified: ARGV[2..1+S] how many episodes to take from each of the S strata, then that
--             many floats per stratum, stratum after stratum
--
-- The floats come from the client's seeded rng, as in reservoir.lua. Draws are a partial
-- Fisher-Yates shuffle over [0, m), so they are distinct and every subset is equally likely;
-- a stream (or the reservoir) holding fewer than asked gives all it has.
-- Returns a list of lists of encoded episodes: one list for uniform, one per stratum for
-- stratified, in the order drawn.

local function distinct_draws(m, first, k)
  local moved = {}
  local out = {}
  for i = 0, k - 1 do
    local j = i + math.floor(tonumber(ARGV[first + i]) * (m - i))
    local at_i = moved[i] or i
    out[i + 1] = moved[j] or j
    moved[j] = at_i
  end
  return out
end

-- HMGET in chunks: unpack() of very long lists would overflow the Lua C stack.
local function fetch(fields)
  local blobs = {}
  for start = 1, #fields, 1000 do
    local stop = math.min(start + 999, #fields)
    local got = redis.call('HMGET', KEYS[2], unpack(fields, start, stop))
    for i = 1, #got do
      blobs[#blobs + 1] = got[i]
    end
  end
  return blobs
end

if ARGV[1] == 'uniform' then
  local state = redis.call('HMGET', KEYS[1], 'capacity', 'seen')
  local size = math.min(tonumber(state[1]) or 0, tonumber(state[2]) or 0)
  local wanted = #ARGV - 1
  local k = math.min(wanted, size)
  local fields = {}
  for i, slot in ipairs(distinct_draws(size, 2, k)) do
    fields[i] = string.format('%d', slot)
  end
  return {fetch(fields)}
end

local streams = #KEYS - 2
local next_float = 2 + streams
local out = {}
for s = 1, streams do
  local wanted = tonumber(ARGV[1 + s])
  local key = KEYS[2 + s]
  local m = redis.call('ZCARD', key)
  local fields = {}
  for i, rank in ipairs(distinct_draws(m, next_float, math.min(wanted, m))) do
    fields[i] = redis.call('ZRANGE', key, rank, rank)[1]
  end
  next_float = next_float + wanted
  out[s] = fetch(fields)
end
return out
