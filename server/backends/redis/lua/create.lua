-- Creates a job. KEYS: row, events, all, owner, merge, credentials, target
-- events, waiting set of its queue key, children index of its parent (any key
-- when it has none). ARGV: writeId, id, row JSON,
-- `job:created` JSON, index score, '1' if the job has a merge key, credentials
-- ('' for none), target, target seq, max waiting ('0' for no limit), '1' if the job has a parent. With a
-- merge key, it must still name `target` ('' for none), whose log must still
-- end at the target seq. Then, given the fair queue's prefix ('' for none), its
-- queue key, run at and now: lists the job for the fair queue in the same step
-- (see fair.ts), so no worker can claim a job that is not there yet, and a
-- start costs one script; given also a worker ('' for none) and a lease
-- expiry, leases the job to that worker instead if nothing else is due (see
-- fair-list.lua). Returns 1, 4 (created and leased to the worker), 2 (already
-- created: a resend), 3 (over the quota: as many jobs of its queue key wait
-- already) or 0 (read again).
-- Needs last-seq.lua and fair-list.lua.
local writeId, id, json, created, order, merge, credentials, target, targetSeq, maxWaiting, child, fair, queueKey, runAt, now, worker, expiry = unpack(ARGV)
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
if merge == '1' then
  if (redis.call('GET', KEYS[5]) or '') ~= target then return 0 end
  if target ~= '' and lastSeq(KEYS[7]) ~= tonumber(targetSeq) then return 0 end
end
-- After the merge check: a start that joins a waiting job creates nothing and is never refused.
local max = tonumber(maxWaiting)
if max > 0 and redis.call('SCARD', KEYS[8]) >= max then return 3 end
if merge == '1' then redis.call('SET', KEYS[5], id) end
redis.call('SADD', KEYS[8], id)
redis.call('SET', KEYS[1], json)
redis.call('XADD', KEYS[2], '1-0', 'e', created, 'w', writeId)
redis.call('ZADD', KEYS[3], order, id)
redis.call('ZADD', KEYS[4], order, id)
if child == '1' then redis.call('ZADD', KEYS[9], order, id) end
if credentials ~= '' then redis.call('SET', KEYS[6], credentials) end
if fair ~= '' then
  if worker ~= '' and leaseAtOnce(fair, id, queueKey, tonumber(runAt), tonumber(now), worker, expiry) then return 4 end
  enlist(fair, id, queueKey, tonumber(runAt), tonumber(now))
end
return 1
