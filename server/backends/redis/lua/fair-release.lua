-- A worker hands jobs back (it is closing, or could not run them): each lease it still holds is
-- released and the job listed as delayed until ARGV[3], marked `lost` as a lapsed lease would be
-- (core tells a job it never started from one whose run was cut short by the store's row).
-- ARGV: prefix, worker id, run at, then job ids. Returns how many it released. Needs fair-list.lua.
local prefix, worker, runAt = ARGV[1], ARGV[2], ARGV[3]
local holder, leases = prefix .. 'holder', prefix .. 'leases'
local released = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', holder, id) == worker then
    redis.call('HDEL', holder, id)
    redis.call('ZREM', leases, id)
    redis.call('HSET', prefix .. 'lost', id, 1)
    redis.call('ZADD', prefix .. 'delayed', runAt, id)
    released = released + 1
  end
end
if released > 0 then wake(prefix) end
return released
