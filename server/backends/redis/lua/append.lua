-- Appends to several jobs at once, and publishes what it wrote on the bus's
-- channel in the same step, unless the only subscriber of the channel is the
-- writing process's own (it hears its writes directly). ARGV: writeId, channel
-- ('' for none), the bus's origin, the channel only the writer's bus
-- subscribes to, then per job: id, expected last seq, entry count, row JSON, end time
-- ('' unless the write ends the job), '1' if an end frees a merge key, '1' if
-- the job stops waiting, then the entries as (stream id, event JSON) pairs.
-- KEYS per job: row, events, and, when it ends, its ended index, its
-- credentials (deleted: they never outlive the job) and (if any) its merge
-- key, and, when it stops waiting, its queue key's waiting set. Returns 1
-- (written), 2 (this write was already applied: a resend) or 0 (a job moved
-- on: read again). Needs last-seq.lua.
local writeId, channel, origin, own = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local jobs = {}
local a, k = 5, 1
while a <= #ARGV do
  local job = { id = ARGV[a], expect = tonumber(ARGV[a + 1]), count = tonumber(ARGV[a + 2]), json = ARGV[a + 3], endedAt = ARGV[a + 4], first = a + 7 }
  job.row, job.events = KEYS[k], KEYS[k + 1]
  k = k + 2
  if job.endedAt ~= '' then
    job.ended, job.credentials = KEYS[k], KEYS[k + 1]
    k = k + 2
    if ARGV[a + 5] == '1' then
      job.merge = KEYS[k]
      k = k + 1
    end
  end
  if ARGV[a + 6] == '1' then
    job.waiting = KEYS[k]
    k = k + 1
  end
  a = job.first + 2 * job.count
  jobs[#jobs + 1] = job
end
for i, job in ipairs(jobs) do
  if lastSeq(job.events) ~= job.expect then
    if i == 1 and wroteAfter(job.events, job.expect, writeId) then return 2 end
    return 0
  end
end
-- The bus subscribes to both channels in one command: one subscriber of each is then the writer's alone.
local publish = channel ~= ''
if publish then
  local listeners = redis.call('PUBSUB', 'NUMSUB', channel, own)
  publish = not (listeners[2] == 1 and listeners[4] == 1)
end
local messages = {}
for _, job in ipairs(jobs) do
  redis.call('SET', job.row, job.json)
  local events = {}
  for e = job.first, job.first + 2 * job.count - 1, 2 do
    redis.call('XADD', job.events, ARGV[e], 'e', ARGV[e + 1], 'w', writeId)
    events[#events + 1] = ARGV[e + 1]
  end
  if job.ended then
    redis.call('ZADD', job.ended, job.endedAt, job.id)
    redis.call('DEL', job.credentials)
    if job.merge then redis.call('DEL', job.merge) end
  end
  if job.waiting then redis.call('SREM', job.waiting, job.id) end
  if publish then
    messages[#messages + 1] = '{"type":"events","jobId":' .. cjson.encode(job.id) .. ',"events":[' .. table.concat(events, ',') .. ']}'
  end
end
if publish then
  redis.call('PUBLISH', channel, '{"from":' .. cjson.encode(origin) .. ',"messages":[' .. table.concat(messages, ',') .. ']}')
end
return 1
