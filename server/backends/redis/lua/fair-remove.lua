-- Unlists a waiting job (a cancel). KEYS: BullMQ's hash of a job with this id.
-- ARGV: prefix, id. Returns 1 (unlisted), 2 (a job of an earlier version: its
-- own BullMQ job must be removed instead) or 0 (not listed: a worker has
-- claimed it, and its run will find it canceled).
local prefix, id = ARGV[1], ARGV[2]
local key = redis.call('HGET', prefix .. 'keyOf', id)
if not key then
  if redis.call('HGET', KEYS[1], 'name') == 'run' then return 2 end
  return 0
end
if redis.call('ZREM', prefix .. 'delayed', id) == 0 then
  local q = prefix .. 'q:' .. key
  if redis.call('ZREM', q, id) == 0 then return 0 end
  if redis.call('ZCARD', q) == 0 then
    redis.call('LREM', prefix .. 'round:this', 0, key)
    redis.call('LREM', prefix .. 'round:next', 0, key)
  end
end
redis.call('HDEL', prefix .. 'keyOf', id)
redis.call('HDEL', prefix .. 'lost', id)
return 1
