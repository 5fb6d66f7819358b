-- The run of turn ARGV[2] is over: forget its job. ARGV: prefix, turn.
local prefix, turn = ARGV[1], ARGV[2]
local picked = redis.call('HGET', prefix .. 'picks', turn)
if not picked then return 0 end
redis.call('HDEL', prefix .. 'picks', turn)
redis.call('HDEL', prefix .. 'keyOf', picked)
return 1
