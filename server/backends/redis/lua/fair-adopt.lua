-- Upgrade from the version whose BullMQ turns took the jobs: each job a turn had taken (`picks`,
-- turn -> job) gets a lease of holder ARGV[2] expiring at ARGV[3], so that, unless it ends first,
-- the sweep puts it back as lost, as BullMQ's stalled check put its turn back. ARGV: prefix,
-- holder, expiry. Returns how many it adopted.
local prefix, worker, expiry = ARGV[1], ARGV[2], ARGV[3]
local picks = redis.call('HGETALL', prefix .. 'picks')
for i = 2, #picks, 2 do
  local id = picks[i]
  if redis.call('HEXISTS', prefix .. 'holder', id) == 0 then
    redis.call('HSET', prefix .. 'holder', id, worker)
    redis.call('ZADD', prefix .. 'leases', expiry, id)
  end
end
redis.call('DEL', prefix .. 'picks')
return #picks / 2
