"""The Lua scripts that move batch lines between states, each one atomic in the state Redis.

A line is in exactly one place: behind the batch's cursor (`next`), in its retry set, in
the running set (with a lease), or recorded in its outcomes hash. `inflight` counts the
batch's running lines; a batch that is stopping (`end` = cancel | expire) is finalized when
it reaches 0. Key layout: `shared.batchkeys`.
"""

from __future__ import annotations

# Shared helpers, prepended to every script. `settle` queues the finalization of a stopping
# batch once nothing of it runs; `stop` makes a batch stop handing out lines.
_HELPERS = """
local function settle(bk, bid, fin, now)
  local f = redis.call('HMGET', bk, 'end', 'inflight')
  if f[1] and f[1] ~= '' and tonumber(f[2] or '0') <= 0 then
    redis.call('ZADD', fin, 'NX', now, bid)
  end
end
local function stop(bk, bid, active, fin, now, why)
  if redis.call('HGET', bk, 'end') ~= '' then return end
  redis.call('HSET', bk, 'end', why)
  if why == 'cancel' then
    redis.call('HSET', bk, 'status', 'cancelling', 'cancelling_at', math.floor(now / 1000))
  end
  redis.call('ZREM', active, bid)
  redis.call('DEL', bk .. ':retry')
  settle(bk, bid, fin, now)
end
local function split(member)
  local sep = string.find(member, '|', 1, true)
  return string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
end
"""

# KEYS: active (the batch queue), running, finalize, chat queue.
# ARGV: now_ms, want, global cap, lease_ms, batch key prefix, gkid prefix, gk prefix.
# Returns {lines, finals}: lines = {batch_id, index, ...} now leased to the caller; finals =
# batch ids whose finalization the caller now owns (for a lease). Expired leases are put
# back first; a waiting interactive job means no line is handed out (interactive first).
CLAIM = (
    _HELPERS
    + """
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[4])
local active, running, fin, pre = KEYS[1], KEYS[2], KEYS[3], ARGV[5]
for _, m in ipairs(redis.call('ZRANGEBYSCORE', running, '-inf', now)) do
  redis.call('ZREM', running, m)
  local bid, idx = split(m)
  local bk = pre .. bid
  if redis.call('EXISTS', bk) == 1 then
    redis.call('HINCRBY', bk, 'inflight', -1)
    if redis.call('HGET', bk, 'end') == '' and redis.call('HEXISTS', bk .. ':out', idx) == 0 then
      redis.call('ZADD', bk .. ':retry', now, idx)
      redis.call('ZADD', active, 'NX', tonumber(redis.call('HGET', bk, 'created_ms')), bid)
    end
    settle(bk, bid, fin, now)
  end
end
local finals = {}
for _, bid in ipairs(redis.call('ZRANGEBYSCORE', fin, '-inf', now, 'LIMIT', 0, 4)) do
  redis.call('ZADD', fin, now + lease, bid)
  finals[#finals + 1] = bid
end
local lines = {}
if redis.call('ZCOUNT', KEYS[4], '-inf', now) > 0 then return {lines, finals} end
local room = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - redis.call('ZCARD', running))
for _, bid in ipairs(redis.call('ZRANGE', active, 0, -1)) do
  local bk = pre .. bid
  local f = redis.call('HMGET', bk, 'next', 'total', 'expires_at', 'owner', 'end', 'status')
  if not f[2] or f[5] ~= '' or f[6] ~= 'in_progress' then
    redis.call('ZREM', active, bid)
  elseif now >= tonumber(f[3]) * 1000 then
    stop(bk, bid, active, fin, now, 'expire')
  else
    local digest = redis.call('GET', ARGV[6] .. f[4])
    if digest and redis.call('HGET', ARGV[7] .. digest, 'revoked') == '1' then
      stop(bk, bid, active, fin, now, 'cancel')
    elseif room > 0 then
      local taken = 0
      local due = redis.call('ZRANGEBYSCORE', bk .. ':retry', '-inf', now, 'LIMIT', 0, room)
      for _, idx in ipairs(due) do
        redis.call('ZREM', bk .. ':retry', idx)
        if redis.call('HEXISTS', bk .. ':out', idx) == 0 then
          redis.call('ZADD', running, now + lease, bid .. '|' .. idx)
          lines[#lines + 1] = bid
          lines[#lines + 1] = idx
          room = room - 1
          taken = taken + 1
        end
      end
      local nxt, total = tonumber(f[1]), tonumber(f[2])
      while room > 0 and nxt < total do
        redis.call('ZADD', running, now + lease, bid .. '|' .. nxt)
        lines[#lines + 1] = bid
        lines[#lines + 1] = tostring(nxt)
        nxt = nxt + 1
        room = room - 1
        taken = taken + 1
      end
      redis.call('HSET', bk, 'next', nxt)
      redis.call('HINCRBY', bk, 'inflight', taken)
      if nxt >= total and redis.call('ZCARD', bk .. ':retry') == 0 then
        redis.call('ZREM', active, bid)
      end
    end
  end
end
return {lines, finals}
"""
)

# KEYS: batch hash, running, finalize, active, usage hash.
# ARGV: batch_id, index, outcome (1 byte ok flag + the output line), ok (1/0), now_ms,
# prompt tokens, completion tokens, usage TTL seconds, then usage field/increment pairs.
# Records a line's outcome and marks it done in one step; 0 if it was already recorded
# (then nothing else changes: no second count, no second bill).
RECORD = (
    _HELPERS
    + """
local bk, bid, idx, now = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[5])
if redis.call('EXISTS', bk) == 0 then return 0 end
if redis.call('ZREM', KEYS[2], bid .. '|' .. idx) == 1 then
  redis.call('HINCRBY', bk, 'inflight', -1)
end
if redis.call('HSETNX', bk .. ':out', idx, ARGV[3]) == 0 then
  settle(bk, bid, KEYS[3], now)
  return 0
end
redis.call('ZREM', bk .. ':retry', idx)
redis.call('HINCRBY', bk, ARGV[4] == '1' and 'completed' or 'failed', 1)
redis.call('HINCRBY', bk, 'input_tokens', tonumber(ARGV[6]))
redis.call('HINCRBY', bk, 'output_tokens', tonumber(ARGV[7]))
if #ARGV > 8 then
  for i = 9, #ARGV, 2 do redis.call('HINCRBY', KEYS[5], ARGV[i], tonumber(ARGV[i + 1])) end
  redis.call('EXPIRE', KEYS[5], tonumber(ARGV[8]))
end
local f = redis.call('HMGET', bk, 'completed', 'failed', 'total', 'end')
if f[4] ~= '' then
  settle(bk, bid, KEYS[3], now)
elseif tonumber(f[1]) + tonumber(f[2]) >= tonumber(f[3]) then
  redis.call('HSET', bk, 'status', 'finalizing', 'finalizing_at', math.floor(now / 1000))
  redis.call('ZREM', KEYS[4], bid)
  redis.call('ZADD', KEYS[3], 'NX', now, bid)
end
return 1
"""
)

# KEYS: batch hash, running, finalize, active. ARGV: batch_id, index, ready_ms, now_ms.
# Gives a leased line back to run later (a rate limit, or the worker shutting down).
DEFER = (
    _HELPERS
    + """
local bk, bid, idx, now = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[4])
if redis.call('ZREM', KEYS[2], bid .. '|' .. idx) == 0 then return 0 end
redis.call('HINCRBY', bk, 'inflight', -1)
if redis.call('HGET', bk, 'end') == '' and redis.call('HEXISTS', bk .. ':out', idx) == 0 then
  redis.call('ZADD', bk .. ':retry', tonumber(ARGV[3]), idx)
  redis.call('ZADD', KEYS[4], 'NX', tonumber(redis.call('HGET', bk, 'created_ms')), bid)
end
settle(bk, bid, KEYS[3], now)
return 1
"""
)

# KEYS: batch hash, active, finalize. ARGV: batch_id, now_ms. Cancel a batch: no line starts
# any more; lines in flight finish. Returns 1 if the batch is now cancelling.
CANCEL = (
    _HELPERS
    + """
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'validating' and st ~= 'in_progress' then return 0 end
stop(KEYS[1], ARGV[1], KEYS[2], KEYS[3], tonumber(ARGV[2]), 'cancel')
return 1
"""
)
