-- Acquire the singleton watcher's lease, taking the next fencing token.
--
-- KEYS[1]  lease  Hash    fields: holder (who holds it), token (its fencing token),
--                         batch:<scope> (see publish.lua); expires (PEXPIRE)
-- KEYS[2]  fence  String  counter: the last token handed out (INCR, never reset)
-- ARGV[1]  holder name (host:pid:random), for operators
-- ARGV[2]  lease time in milliseconds
--
-- Returns {1, token} when acquired; {0, holder, token} when someone else holds the lease.
-- A new acquisition always gets a new, larger token, so writes fenced by an older token fail.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local held = redis.call('HMGET', KEYS[1], 'holder', 'token')
  return {0, held[1] or '', held[2] or ''}
end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, token}
