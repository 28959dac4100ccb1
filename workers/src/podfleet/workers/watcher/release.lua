-- Give the watcher's lease up at once (graceful stop), only if the caller still holds it.
--
-- KEYS[1]  lease  Hash    holder, token, batch:<scope> (see publish.lua)
-- ARGV[1]  the caller's fencing token
-- ARGV[2]  the caller's holder name (a token alone could repeat if Redis lost its data)
--
-- Returns 1 when released, 0 when it was no longer the caller's.
local held = redis.call('HMGET', KEYS[1], 'token', 'holder')
if held[1] == ARGV[1] and held[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
