-- Publish one batch of task events, the per-pod "last published" records and the
-- resourceVersion they bring the watcher up to - all or nothing, and only while the caller's
-- fencing token is the lease's current token. A watcher that paused past its lease (GC, swap,
-- a partition) and wakes up after another took over therefore writes nothing.
--
-- KEYS[1]   lease     Hash    holder, token (see acquire.lua), and per scope
--                             'batch:<KEYS[2]>': id of the last batch this script wrote
-- KEYS[2]   rv        String  the resourceVersion this scope's events are published up to
-- KEYS[3]   pods      Hash    pod uid -> last published stage (+ identity), see phases.py
-- KEYS[4..] streams   Stream  <prefix>:events:<executor>, one per executor in the batch
--
-- ARGV[1]  fencing token
-- ARGV[2]  holder name (a token alone could repeat if Redis lost its data)
-- ARGV[3]  batch id (<token>:<sequence>): a retry of a batch already applied is a no-op
-- ARGV[4]  resourceVersion to store, or '' to leave it
-- ARGV[5]  number of events E
-- ARGV[6]  number of records to set S
-- ARGV[7]  number of records to delete D
-- ARGV[8]  prefix of admission's views, <prefix>:admission: ; a view's key is the prefix
--          and its suffix, pending:<namespace> (pods not yet Running) or
--          active:<queue>:<namespace> (a queue's pods not finished): ZSet pod name ->
--          reservation expiry (ms), or +inf once seen here (permit.lua of
--          podfleet.workers.admission, which reserves names, documents them)
-- ARGV[9]  <prefix>:admission:namespaces, Set of the namespaces with a view
-- ARGV[10] number of view changes V
-- ARGV[11] number of views a relist replaces L
-- then E events, each: <index into KEYS of its stream> <2 x field count> <field> <value> ...
-- then S pairs: <pod uid> <record>
-- then D pod uids
-- then V quadruples: <view suffix> <namespace> <pod name> <'c': confirm it (the pod is in
--   the view's state) | 'r': remove it (it left that state, or is gone)>
-- then L groups: <view suffix> <namespace> <count M> <M pod names>: what the list shows in
--   that view; confirmed names not among them are removed (unconfirmed reservations stay:
--   the list cannot show a create still in flight)
--
-- Returns 1 when written, 2 when this batch id was already written, 0 when the token is stale.
local batch_field = 'batch:' .. KEYS[2]
local lease = redis.call('HMGET', KEYS[1], 'token', 'holder', batch_field)
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then
  return 0
end
if lease[3] == ARGV[3] then
  return 2
end
local i = 12
for _ = 1, tonumber(ARGV[5]) do
  local stream = KEYS[tonumber(ARGV[i])]
  local n = tonumber(ARGV[i + 1])
  redis.call('XADD', stream, '*', unpack(ARGV, i + 2, i + 1 + n))
  i = i + 2 + n
end
-- unpack() is bounded by Lua's C stack: write records in slices.
local chunk = 400
local remaining = tonumber(ARGV[6])
while remaining > 0 do
  local take = math.min(remaining, chunk)
  redis.call('HSET', KEYS[3], unpack(ARGV, i, i + 2 * take - 1))
  i = i + 2 * take
  remaining = remaining - take
end
remaining = tonumber(ARGV[7])
while remaining > 0 do
  local take = math.min(remaining, chunk)
  redis.call('HDEL', KEYS[3], unpack(ARGV, i, i + take - 1))
  i = i + take
  remaining = remaining - take
end
for _ = 1, tonumber(ARGV[10]) do
  local key = ARGV[8] .. ARGV[i]
  if ARGV[i + 3] == 'c' then
    redis.call('ZADD', key, 'inf', ARGV[i + 2])
    redis.call('SADD', ARGV[9], ARGV[i + 1])
  else
    redis.call('ZREM', key, ARGV[i + 2])
  end
  i = i + 4
end
for _ = 1, tonumber(ARGV[11]) do
  local key = ARGV[8] .. ARGV[i]
  local namespace = ARGV[i + 1]
  i = i + 1
  local n = tonumber(ARGV[i + 1])
  local listed = {}
  for j = i + 2, i + 1 + n do
    listed[ARGV[j]] = true
  end
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', key, 'inf', 'inf')) do
    if not listed[name] then
      redis.call('ZREM', key, name)
    end
  end
  for j = i + 2, i + 1 + n do
    redis.call('ZADD', key, 'inf', ARGV[j])
  end
  if n > 0 then
    redis.call('SADD', ARGV[9], namespace)
  end
  i = i + 2 + n
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[1], batch_field, ARGV[3])
return 1
