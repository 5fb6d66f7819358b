-- A worker's one step: releases the leases of the runs it finished, then claims up to `count`
-- due jobs, fairly across queue keys, each under a lease (job -> worker in `holder`, expiry in
-- `leases`). ARGV: prefix, worker id, now, lease ms, count, the prefix of the store's rows, then
-- the ids of the jobs whose runs on this worker are over. Returns { next, id, resumed, row, ... }:
-- next is the run time of the earliest delayed job when fewer than `count` were claimed (false
-- otherwise, or if none), then per job claimed its id, 1 if it was taken before and its worker
-- lost it (see fair-sweep.lua, fair-release.lua) else 0, and its row as of the claim (false if
-- it has none). Needs fair-list.lua.
local prefix, worker, now, leaseMs, count, rows = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local holder, leases, lost, keyOf = prefix .. 'holder', prefix .. 'leases', prefix .. 'lost', prefix .. 'keyOf'
for i = 7, #ARGV do
  local id = ARGV[i]
  -- Only a lease still ours: one that expired may be another worker's by now.
  if redis.call('HGET', holder, id) == worker then
    redis.call('HDEL', holder, id)
    redis.call('ZREM', leases, id)
    redis.call('HDEL', keyOf, id)
    redis.call('HDEL', lost, id)
  end
end
local out = { false }
if count <= 0 then return out end
local delayed = prefix .. 'delayed'
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', delayed, id)
  list(prefix, id)
end
local thisRound, nextRound, served = prefix .. 'round:this', prefix .. 'round:next', prefix .. 'served'
local claimed = 0
while claimed < count do
  local key = redis.call('LPOP', thisRound)
  if not key then
    if redis.call('EXISTS', nextRound) == 0 then break end
    redis.call('RENAME', nextRound, thisRound)
    redis.call('DEL', served)
    key = redis.call('LPOP', thisRound)
  end
  local q = prefix .. 'q:' .. key
  local first = redis.call('ZPOPMIN', q)[1]
  if first then
    redis.call('SADD', served, key)
    if redis.call('ZCARD', q) > 0 then redis.call('RPUSH', nextRound, key) end
    redis.call('HSET', holder, first, worker)
    redis.call('ZADD', leases, now + leaseMs, first)
    out[#out + 1] = first
    out[#out + 1] = redis.call('HDEL', lost, first)
    out[#out + 1] = redis.call('GET', rows .. first)
    claimed = claimed + 1
  end
end
if claimed < count then
  local soonest = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')[2]
  if soonest then out[1] = soonest end
end
return out
