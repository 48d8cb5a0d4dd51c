/**
 * The Lua script behind every write of `state.redis`: one EVALSHA checks all conditions first
 * (against the state the earlier operations leave), then applies all, so a batch is atomic and
 * a failing etag changes nothing. Values live in a hash {data, version} as in Dapr's Redis store;
 * versions come from one counter per key prefix, so an etag is never reused after a delete.
 *
 * KEYS: [counter, key1, ..., keyN]; ARGV: 4 per operation: op ('set'|'del'), condition
 * ('none'|'etag'|'absent'), expected version, data, ttl ms ('0' = none) — 5 fields.
 * Returns the new versions (0 for deletes); fails with `CAPAETAG <index>` on a mismatch.
 */
export const WRITE_SCRIPT = `
local n = #KEYS - 1
local sim = {}
for i = 1, n do
  local k = KEYS[i + 1]
  local b = (i - 1) * 5
  local cond = ARGV[b + 2]
  local cur = sim[k]
  if cur == nil then
    cur = redis.call('HGET', k, 'version')
  end
  if cond == 'etag' and cur ~= ARGV[b + 3] then
    return redis.error_reply('CAPAETAG ' .. i)
  end
  if cond == 'absent' and cur then
    return redis.error_reply('CAPAEXISTS ' .. i)
  end
  if ARGV[b + 1] == 'set' then sim[k] = 'pending' else sim[k] = false end
end
local out = {}
for i = 1, n do
  local k = KEYS[i + 1]
  local b = (i - 1) * 5
  if ARGV[b + 1] == 'set' then
    local v = redis.call('INCR', KEYS[1])
    redis.call('HSET', k, 'data', ARGV[b + 4], 'version', v)
    local ttl = tonumber(ARGV[b + 5])
    if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('PERSIST', k) end
    out[i] = v
  else
    redis.call('DEL', k)
    out[i] = 0
  end
end
return out
`;
