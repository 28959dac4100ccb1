-- podfleet's cluster-wide rate limit: GCRA with reservations, atomic in one call.
--
-- gcra(
--   keys=[tat_key],
--   args=[interval_us, burst, requested, max_wait_us]
-- ) -> {granted, wait_us}
--
-- $prefix:ratelimit:$name   (KEYS[1])
--   String: the theoretical arrival time (TAT) of the limit, an integer count of
--   microseconds since the Unix epoch by *Redis'* clock (TIME), so every worker on every
--   machine shares one clock. It expires once it lies in the past (an idle limit holds a full
--   burst, which is what a missing key means).
--
-- Permit i of a grant (1-based) conforms at  tat + i * interval - burst * interval.
-- The caller is granted the largest k <= requested whose last permit conforms within
-- max_wait_us, the TAT moves on by k intervals, and wait_us says when the *last* of the k
-- conforms, relative to now (negative when it conformed already, inside the burst). Permit
-- i of the grant (1-based) conforms wait_us - (k - i) * interval_us from now, and the
-- caller must not use it earlier: using all k at the last one's time would put up to k - 1
-- extra permits into a one-second window. With k = 0 nothing is reserved and wait_us is
-- when one permit would conform. Reserving rather than polling keeps callers in FIFO order
-- and costs one round trip per grant.

local key = KEYS[1]
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local tat = tonumber(redis.call("GET", key) or "0")
if tat < now then
    tat = now
end

local tolerance = burst * interval
local granted = math.floor((now + max_wait + tolerance - tat) / interval)
if granted > requested then
    granted = requested
end
if granted < 1 then
    return {0, tat + interval - tolerance - now}
end

local new_tat = tat + granted * interval
local wait = new_tat - tolerance - now
redis.call("SET", key, string.format("%.0f", new_tat),
           "PX", math.floor((new_tat - now) / 1000) + 1000)
return {granted, wait}
