-- Extend the watcher's lease, only if the caller's token is still the current one.
--
-- KEYS[1]  lease  Hash    holder, token, batch:<scope> (see publish.lua); expires (PEXPIRE)
-- ARGV[1]  the caller's fencing token
-- ARGV[2]  the caller's holder name (a token alone could repeat if Redis lost its data)
-- ARGV[3]  lease time in milliseconds, from now
--
-- Returns 1 when extended, 0 when the lease expired or belongs to a newer token.
local held = redis.call('HMGET', KEYS[1], 'token', 'holder')
if held[1] == ARGV[1] and held[2] == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
