-- Helper of the fair pick's scripts (prepended to fair-enqueue.lua, fair-claim.lua, fair-sweep.lua
-- and, for the store's creates, create.lua).

-- Moves job `id` (known to `keyOf`) into its key's queue, and a key that had nothing due into a
-- round: at the end, or, given `first`, ahead of the key's other jobs (a job whose lease expired
-- goes back where it was: it was taken fairly already).
local function list(prefix, id, first)
  local key = redis.call('HGET', prefix .. 'keyOf', id)
  if not key then return end
  local q = prefix .. 'q:' .. key
  if redis.call('ZCARD', q) == 0 then
    local round = redis.call('SISMEMBER', prefix .. 'served', key) == 1 and 'round:next' or 'round:this'
    redis.call('RPUSH', prefix .. round, key)
  end
  redis.call('ZADD', q, first and 0 or redis.call('INCR', prefix .. 'seq'), id)
end

-- Tells idle workers there is something new to claim (or a new due time to wait for). Cheap when
-- nobody listens: web-only deployments have no subscriber.
local function wake(prefix)
  redis.call('PUBLISH', prefix .. 'wake', '')
end

-- Lists job `id` (not listed yet) under queue key `key`: due now, or delayed until `runAt`.
local function enlist(prefix, id, key, runAt, now)
  redis.call('HSET', prefix .. 'keyOf', id, key)
  if runAt > now then
    redis.call('ZADD', prefix .. 'delayed', runAt, id)
  else
    list(prefix, id)
  end
  wake(prefix)
end
