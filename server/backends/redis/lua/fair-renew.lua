-- Renews a worker's leases. ARGV: prefix, worker id, new expiry, then the ids of the jobs it runs.
-- Returns the ids whose lease it no longer holds (it expired and was swept: the job went back).
local prefix, worker, expiry = ARGV[1], ARGV[2], ARGV[3]
local holder, leases = prefix .. 'holder', prefix .. 'leases'
local gone = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', holder, id) == worker then
    redis.call('ZADD', leases, expiry, id)
  else
    gone[#gone + 1] = id
  end
end
return gone
