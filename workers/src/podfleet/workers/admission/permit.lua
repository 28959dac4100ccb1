-- podfleet's launch permit: a pod is created only when three budgets have room, checked
-- here, atomically, in one call per slow-start round.
--
-- permit(
--   keys=[total, share, ceiling, demand, pending, namespaces, waiting, scratch, at_cap],
--   args=[queue, namespace, total_interval_us, total_burst, ceiling_interval_us,
--         ceiling_burst, horizon_us, ns_cap, total_cap, reservation_ttl_ms,
--         pending_prefix, demand_window_us, default_weight, queue_cap, active_prefix,
--         W, <W pairs: queue weight>, N, <N pod names>]
-- ) -> {granted, wait_us, budget, delay_us_1, ..., delay_us_granted}
--
-- KEYS[1] $prefix:ratelimit:launch        String  GCRA TAT (µs) of the cluster's launch
--                                                  rate (PODFLEET_LAUNCH_RATE): the ceiling
--                                                  of all queues together
-- KEYS[2] $prefix:admission:share:$queue  String  GCRA TAT (µs) of this queue's fair share
-- KEYS[3] $prefix:ratelimit:launch.$queue String  GCRA TAT (µs) of the queue's own ceiling
--                                                  (PODFLEET_QUEUE_RATES); unused when
--                                                  ceiling_interval_us is 0
-- KEYS[4] $prefix:admission:demand        ZSet    queue -> last ask (µs); the queues that
--                                                  asked within demand_window_us share
-- KEYS[5] $prefix:admission:pending:$ns   ZSet    pod name -> reservation expiry (ms), or
--                                                  +inf once the watcher saw the pod
-- KEYS[6] $prefix:admission:namespaces    Set     namespaces with a pending view
-- KEYS[7] $prefix:admission:waiting       Hash    queue -> '<budget> <ms>' of its last refusal
-- KEYS[8] $prefix:admission:scratch       ZSet    scratch for counting a queue's pending
--                                                  pods (ZINTERSTORE, which unlike
--                                                  ZINTERCARD any Redis has); deleted
--                                                  before the script returns
-- KEYS[9] $prefix:admission:at_cap        ZSet    queue -> when (µs) a pending cap last
--                                                  refused it or held it to less than it
--                                                  asked; removed when its rate refuses it
-- and, read for the total, $pending_prefix$ns for every member of KEYS[6] (the same kind of
-- key as KEYS[5]); $prefix:admission:active:$queue:$ns (active_prefix..queue..':'..ns) for
-- this queue's pool (every member of KEYS[6] and the namespace) and, for the pending split,
-- every queue with demand: ZSet pod name -> reservation expiry (ms) or +inf once the watcher
-- saw it, the queue's pods that exist and have not finished. A single Redis, not a
-- cluster, so keys built here are fine.
--
-- Budgets, in order: 'pool' (the queue's cap on its pods not finished, PODFLEET_QUEUE_MAX_
-- RUNNING), 'pending' (the namespace's or the total cap of pods not yet Running), then
-- 'pending_share' (the queue's weighted share of those caps among the queues with demand),
-- then 'share' (the queue's weighted share of the launch rate among the queues with demand),
-- 'ceiling' (the queue's own rate) and 'rate' (the cluster's launch rate). The grant is the
-- largest k <= N that every budget allows with its last permit conforming within horizon_us;
-- each GCRA then moves on by k of its intervals and the k names are reserved in KEYS[5],
-- expiring after reservation_ttl_ms unless the watcher confirms them. delay_us_i says when
-- permit i conforms, relative to now. With k = 0 nothing is reserved, 'budget' names the
-- budget that refused, and wait_us is roughly when to ask again.

local queue = ARGV[1]
local namespace = ARGV[2]
local total_interval = tonumber(ARGV[3])
local total_burst = tonumber(ARGV[4])
local ceiling_interval = tonumber(ARGV[5])
local ceiling_burst = tonumber(ARGV[6])
local horizon = tonumber(ARGV[7])
local ns_cap = tonumber(ARGV[8])
local total_cap = tonumber(ARGV[9])
local ttl_ms = tonumber(ARGV[10])
local pending_prefix = ARGV[11]
local demand_window = tonumber(ARGV[12])
local default_weight = tonumber(ARGV[13])
local queue_cap = tonumber(ARGV[14])
local active_prefix = ARGV[15]
local nweights = tonumber(ARGV[16])
local weights = {}
local i = 17
for _ = 1, nweights do
  weights[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
local requested = tonumber(ARGV[i])
local names_at = i + 1

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)

local function refuse(budget, wait_us)
  redis.call('HSET', KEYS[7], queue, budget .. ' ' .. now_ms)
  if budget == 'pending' or budget == 'pending_share' then
    redis.call('ZADD', KEYS[9], now, queue)
  elseif budget ~= 'pool' then
    redis.call('ZREM', KEYS[9], queue)
  end
  return {0, math.floor(wait_us), budget}
end

local room = requested

-- 0. The queue's pool: its pods that exist and have not finished, in every namespace.
local function active_key(name, ns)
  return active_prefix .. name .. ':' .. ns
end
if queue_cap > 0 then
  local active = 0
  local counted = {}
  local namespaces = redis.call('SMEMBERS', KEYS[6])
  table.insert(namespaces, namespace)
  for _, ns in ipairs(namespaces) do
    if not counted[ns] then
      counted[ns] = true
      local key = active_key(queue, ns)
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
      active = active + redis.call('ZCARD', key)
    end
  end
  room = math.min(room, queue_cap - active)
  if room < 1 then
    return refuse('pool', 200000)
  end
end

-- Demand: this queue asks now (a queue at its pool cannot launch, so it does not share);
-- queues silent for a window no longer share.
redis.call('ZADD', KEYS[4], now, queue)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - demand_window)
local active = redis.call('ZRANGE', KEYS[4], 0, -1)
local function weight(name)
  return weights[name] or default_weight
end
local weight_sum = 0
for _, name in ipairs(active) do
  weight_sum = weight_sum + weight(name)
end
local own = weight(queue)

-- The room a cap leaves this queue when the queues with demand split it by weight, work-
-- conserving: each may fill up to its share (cap x weight / the weights of the queues with
-- demand) from the free room, and beyond its share only what the others are not owed. A
-- queue is owed the difference to its share while it is under it and waits at a pending
-- cap: one refused (or held to less than it asked) by a cap within the last half demand
-- window (its launchers ask again every 0.2 s while they wait), and not since refused by
-- its rate. One waiting at its rate share cannot use a slot now, so it leaves its slots
-- to the queues that can (they would stand empty otherwise). Pods of queues without
-- demand hold their slots and are owed nothing. held(name) counts a queue's pods under
-- the cap.
local function blocked_at_pending(name)
  local at = redis.call('ZSCORE', KEYS[9], name)
  return at ~= false and tonumber(at) >= now - demand_window / 2
end
local function split(cap, used, held)
  local free = cap - used
  if #active < 2 or free < 1 then
    return free
  end
  local function due(name)
    return weight_sum > 0 and cap * weight(name) / weight_sum or 0
  end
  -- Others can be owed at most their shares: with that much free, no need to count.
  if free - (cap - due(queue)) >= room then
    return free
  end
  local owed = 0
  for _, name in ipairs(active) do
    if name ~= queue and blocked_at_pending(name) then
      owed = owed + math.max(0, due(name) - held(name))
    end
  end
  return math.min(free, math.max(math.ceil(due(queue) - held(queue)), math.floor(free - owed)))
end
local function pending_of(name, ns)
  return redis.call('ZINTERSTORE', KEYS[8], 2, pending_prefix .. ns, active_key(name, ns))
end

-- 1. Pods not yet Running: drop reservations nobody confirmed in time, then count.
local held_by_cap = false
if ns_cap > 0 or total_cap > 0 then
  local asked = room
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now_ms)
  local in_ns = redis.call('ZCARD', KEYS[5])
  local capped = room
  if ns_cap > 0 then
    capped = math.min(capped, ns_cap - in_ns)
    room = math.min(room, split(ns_cap, in_ns, function(name)
      return pending_of(name, namespace)
    end))
  end
  if total_cap > 0 then
    local total = 0
    local namespaces = redis.call('SMEMBERS', KEYS[6])
    for _, ns in ipairs(namespaces) do
      local key = pending_prefix .. ns
      if key ~= KEYS[5] then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
        total = total + redis.call('ZCARD', key)
      end
    end
    -- With one cap for every namespace and none other holding pods, it is the above.
    if ns_cap ~= total_cap or total > 0 then
      table.insert(namespaces, namespace)
      capped = math.min(capped, total_cap - total - in_ns)
      room = math.min(room, split(total_cap, total + in_ns, function(name)
        local held, counted = 0, {}
        for _, ns in ipairs(namespaces) do
          if not counted[ns] then
            counted[ns] = true
            held = held + pending_of(name, ns)
          end
        end
        return held
      end))
    end
  end
  redis.call('DEL', KEYS[8])
  if capped < 1 then
    return refuse('pending', 200000)
  end
  if room < 1 then
    return refuse('pending_share', 200000)
  end
  held_by_cap = room < asked
end

-- 2. The rate budgets: each GCRA allows k permits conforming within the horizon.
local gcras = {}
if total_interval > 0 then
  -- This queue's share of the launch rate: its weight over the weights of the queues
  -- with demand (itself included). A zero weight gets the rate only while alone.
  local share_interval
  if own > 0 then
    share_interval = total_interval * weight_sum / own
  elseif weight_sum > 0 then
    return refuse('share', 200000)
  else
    share_interval = total_interval
  end
  local share_burst = math.max(1, math.floor(total_burst * total_interval / share_interval))
  table.insert(gcras, {KEYS[2], share_interval, share_burst, 'share'})
  if ceiling_interval > 0 then
    table.insert(gcras, {KEYS[3], ceiling_interval, ceiling_burst, 'ceiling'})
  end
  -- The shares add up to the rate (and their bursts to the burst), so the cluster's own
  -- GCRA is a ceiling that binds only when they do not: while shares change, the busy
  -- queues' reservations made at their old shares (at most the horizon ahead) overlap the
  -- new ones, which its tolerance absorbs instead of refusing whoever asks next (that
  -- would hand the rate out first-come-first-served, not by weight).
  table.insert(gcras, {KEYS[1], total_interval,
                       total_burst + math.floor(horizon / total_interval), 'rate'})
elseif ceiling_interval > 0 then
  table.insert(gcras, {KEYS[3], ceiling_interval, ceiling_burst, 'ceiling'})
end

local k = room
for _, g in ipairs(gcras) do
  local tat = tonumber(redis.call('GET', g[1]) or '0')
  if tat < now then
    tat = now
  end
  g[5] = tat
  local tolerance = g[3] * g[2]
  local allowed = math.floor((now + horizon + tolerance - tat) / g[2])
  if allowed < 1 then
    return refuse(g[4], tat + g[2] - tolerance - now)
  end
  k = math.min(k, allowed)
end

local delays = {}
for n = 1, k do
  delays[n] = 0
end
for _, g in ipairs(gcras) do
  local tat, interval, tolerance = g[5], g[2], g[3] * g[2]
  for n = 1, k do
    local due = tat + n * interval - tolerance - now
    if due > delays[n] then
      delays[n] = due
    end
  end
  local new_tat = tat + k * interval
  redis.call('SET', g[1], string.format('%.0f', new_tat),
             'PX', math.floor((new_tat - now) / 1000) + 1000)
end

-- 3. Reserve the names: the pods about to be created count as pending (and in their
-- queue's pool, which the pending split counts them by) from now on.
local expiry = now_ms + ttl_ms
if ns_cap > 0 or total_cap > 0 then
  for n = 0, k - 1 do
    redis.call('ZADD', KEYS[5], 'NX', expiry, ARGV[names_at + n])
  end
  redis.call('SADD', KEYS[6], namespace)
end
if queue_cap > 0 or ns_cap > 0 or total_cap > 0 then
  local key = active_key(queue, namespace)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)  -- reservations nobody confirmed
  for n = 0, k - 1 do
    redis.call('ZADD', key, 'NX', expiry, ARGV[names_at + n])
  end
  redis.call('SADD', KEYS[6], namespace)
end
redis.call('HDEL', KEYS[7], queue)
if held_by_cap and k == room then
  redis.call('ZADD', KEYS[9], now, queue)
end
local reply = {k, math.floor(delays[k] or 0), ''}
for n = 1, k do
  reply[3 + n] = math.floor(delays[n])
end
return reply
