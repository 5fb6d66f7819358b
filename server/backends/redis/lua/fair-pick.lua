-- The job turn ARGV[2] runs. ARGV: prefix, turn, its own job's id, now, the
-- prefix of the store's rows. Returns { id, resumed, row } (resumed 1: the
-- turn had taken this job before and was handed out again; row: the job's row
-- as of the pick, nil if there is none), or nil when there is nothing to run.
-- Needs fair-list.lua.
local prefix, turn, own, now, rows = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local picked = redis.call('HGET', prefix .. 'picks', turn)
if picked then return { picked, 1, redis.call('GET', rows .. picked) } end
local delayed = prefix .. 'delayed'
if redis.call('ZREM', delayed, own) == 1 then list(prefix, own) end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', delayed, id)
  list(prefix, id)
end
local thisRound, nextRound, served = prefix .. 'round:this', prefix .. 'round:next', prefix .. 'served'
while true do
  local key = redis.call('LPOP', thisRound)
  if not key then
    if redis.call('EXISTS', nextRound) == 0 then return nil end
    redis.call('RENAME', nextRound, thisRound)
    redis.call('DEL', served)
    key = redis.call('LPOP', thisRound)
  end
  local q = prefix .. 'q:' .. key
  local first = redis.call('ZPOPMIN', q)[1]
  if first then
    redis.call('SADD', served, key)
    if redis.call('ZCARD', q) > 0 then redis.call('RPUSH', nextRound, key) end
    redis.call('HSET', prefix .. 'picks', turn, first)
    return { first, 0, redis.call('GET', rows .. first) }
  end
end
