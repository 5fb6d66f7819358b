-- Helper of the fair pick's scripts (prepended to fair-enqueue.lua, fair-pick.lua and, for the
-- store's creates, create.lua).

-- Moves job `id` (known to `keyOf`) to the end of its key's queue, and a key that had nothing due into a round.
local function list(prefix, id)
  local key = redis.call('HGET', prefix .. 'keyOf', id)
  if not key then return end
  local q = prefix .. 'q:' .. key
  if redis.call('ZCARD', q) == 0 then
    local round = redis.call('SISMEMBER', prefix .. 'served', key) == 1 and 'round:next' or 'round:this'
    redis.call('RPUSH', prefix .. round, key)
  end
  redis.call('ZADD', q, redis.call('INCR', prefix .. 'seq'), id)
end

-- Lists job `id` (not listed yet) under queue key `key`: due now, or delayed until `runAt`.
local function enlist(prefix, id, key, runAt, now)
  redis.call('HSET', prefix .. 'keyOf', id, key)
  if runAt > now then
    redis.call('ZADD', prefix .. 'delayed', runAt, id)
  else
    list(prefix, id)
  end
end
