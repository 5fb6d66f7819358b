-- Helpers of the store's scripts (prepended to append.lua and create.lua).

-- Seq of the last entry of the stream `key` (0 when empty).
local function lastSeq(key)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  if not last then return 0 end
  return tonumber(string.match(last[1], '^(%d+)'))
end

-- Whether the entry right after seq `after` of `key` was added by write `writeId`.
local function wroteAfter(key, after, writeId)
  local id = (after + 1) .. '-0'
  local entry = redis.call('XRANGE', key, id, id)[1]
  return entry ~= nil and entry[2][4] == writeId
end
