-- Helpers of the fair queue's scripts (prepended to fair-enqueue.lua, fair-claim.lua, fair-sweep.lua,
-- fair-release.lua and, for the store's creates, create.lua).

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

-- Leases job `id` (not listed yet, of queue key `key`) to `worker` until `expiry` at once, when it
-- is due and is the job a claim would take next anyway: nothing else is due (no key in either
-- round, no delayed job past due). The rounds end as that claim would leave them: the key served,
-- in a new round if it was served in this one already. Returns whether it leased.
local function leaseAtOnce(prefix, id, key, runAt, now, worker, expiry)
  if runAt > now then return false end
  if redis.call('EXISTS', prefix .. 'round:this', prefix .. 'round:next') > 0 then return false end
  if #redis.call('ZRANGEBYSCORE', prefix .. 'delayed', '-inf', now, 'LIMIT', 0, 1) > 0 then return false end
  local served = prefix .. 'served'
  if redis.call('SISMEMBER', served, key) == 1 then redis.call('DEL', served) end
  redis.call('SADD', served, key)
  redis.call('HSET', prefix .. 'keyOf', id, key)
  redis.call('HSET', prefix .. 'holder', id, worker)
  redis.call('ZADD', prefix .. 'leases', expiry, id)
  return true
end
