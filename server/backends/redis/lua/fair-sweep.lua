-- Puts back the jobs whose lease expired (their worker died or hangs), ahead of their key's other
-- jobs, marked `lost` so the worker that claims one next is told (Handover.lost). Any worker runs
-- it, now and then. ARGV: prefix, now. Returns how many came back. Needs fair-list.lua.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local leases, holder = prefix .. 'leases', prefix .. 'holder'
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', leases, id)
  redis.call('HDEL', holder, id)
  if redis.call('HEXISTS', prefix .. 'keyOf', id) == 1 then
    redis.call('HSET', prefix .. 'lost', id, 1)
    list(prefix, id, true)
  end
end
if #expired > 0 then wake(prefix) end
return #expired
