-- Lists a job. KEYS: BullMQ's hash of a job with this id (only an earlier
-- version gave BullMQ jobs the job's id), the job's row.
-- ARGV: prefix, id, queue key, run at, now. Returns 1, or 0 when there is
-- nothing to do: queued already, a job of an earlier version (its own BullMQ
-- job runs it, first in first out, as then), or a job that does not exist.
-- Needs fair-list.lua.
local prefix, id, key, runAt, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('HEXISTS', prefix .. 'keyOf', id) == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'name') == 'run' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
enlist(prefix, id, key, runAt, now)
return 1
