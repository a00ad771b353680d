//! The Lua scripts that change Redis. Each runs atomically, so a
//! publication's offset, its stream entry, its idempotency key and its
//! pub/sub message are one step: pub/sub order is offset order, and a
//! publication is either stamped, kept and announced, or none of these.
//!
//! Times come from Redis (`TIME`), never from a node, so nodes with skewed
//! clocks agree on when a lease expires. Scripts that build key names from
//! arguments assume a single Redis server (not Redis Cluster).

use std::sync::LazyLock;

use redis::Script;

/// KEYS: stream, meta, idempotency key. ARGV: publication JSON (without
/// position), history size, history TTL ms, idempotency window ms (0: no
/// key), pub/sub channel, a fresh epoch for a stream that starts over, the
/// epoch's TTL ms.
/// Returns {1, "epoch\noffset"}, or {0, stamp} for a repeated key.
pub static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local window = tonumber(ARGV[4])
if window > 0 then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
local size = tonumber(ARGV[2])
local epoch, offset = '', 0
if size > 0 then
  local meta = redis.call('HMGET', KEYS[2], 'epoch', 'top')
  if meta[1] then
    epoch = meta[1]
    offset = tonumber(meta[2]) + 1
  else
    epoch = ARGV[6]
    offset = 1
    redis.call('DEL', KEYS[1])
  end
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', offset)
  redis.call('XADD', KEYS[1], 'MAXLEN', size, offset .. '-0', 'p', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
local stamp = epoch .. '\n' .. offset
redis.call('PUBLISH', ARGV[5], 'P\n' .. stamp .. '\n' .. ARGV[1])
if window > 0 then redis.call('SET', KEYS[3], stamp, 'PX', window) end
return {1, stamp}
",
    )
});

/// KEYS: stream, meta, presence hash, lease expiries, positions hash,
/// position expiries. ARGV: how many publications, the channel, a fresh
/// epoch and its TTL ms (a stream channel gets its epoch when first
/// followed, so its first subscribers' positions stay valid). Returns
/// {epoch, top, entries newest first, {lease, member, ...} of the live
/// leases, {position JSON, ...} of the live positions}.
pub static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'top')
if not meta[1] and tonumber(ARGV[1]) > 0 then
  redis.call('HSET', KEYS[2], 'epoch', ARGV[3], 'top', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('DEL', KEYS[1])
  meta = {ARGV[3], '0'}
end
local entries = {}
if meta[1] and tonumber(ARGV[1]) > 0 then
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])
end
local leases = {}
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  local expiry = redis.call('ZSCORE', KEYS[4], ARGV[2] .. '\n' .. all[i])
  if expiry and tonumber(expiry) > now then
    leases[#leases + 1] = all[i]
    leases[#leases + 1] = all[i + 1]
  end
end
local positions = {}
local shared = redis.call('HGETALL', KEYS[5])
for i = 1, #shared, 2 do
  local expiry = redis.call('ZSCORE', KEYS[6], ARGV[2] .. '\n' .. shared[i])
  if expiry and tonumber(expiry) > now then
    positions[#positions + 1] = shared[i + 1]
  end
end
return {meta[1] or '', meta[2] or '0', entries, leases, positions}
",
    )
});

/// KEYS: stream, meta. ARGV: first and last offset. Returns {epoch,
/// entries oldest first}.
pub static RANGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {'', {}} end
return {epoch, redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', ARGV[2] .. '-0')}
",
    )
});

/// KEYS: presence hash, lease expiries. ARGV: lease, member JSON, TTL ms,
/// channel, pub/sub channel. Announces the lease when it is new.
pub static ADD_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local added = redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4] .. '\n' .. ARGV[1])
if added == 1 then
  redis.call('PUBLISH', ARGV[5], 'J\n' .. ARGV[1] .. '\n' .. ARGV[2])
end
return added
",
    )
});

/// KEYS: lease expiries. ARGV: TTL ms, key prefix, then (channel, lease,
/// member JSON) triples. Extends each lease; one Redis lost (a restart) is
/// put back and announced again. Returns how many were put back.
pub static TOUCH_LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
local restored = 0
for i = 3, #ARGV, 3 do
  local channel, lease, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = channel .. '\n' .. lease
  if not redis.call('ZSCORE', KEYS[1], key) then
    redis.call('HSET', ARGV[2] .. 'p:' .. channel, lease, member)
    redis.call('PUBLISH', ARGV[2] .. 'c:' .. channel, 'J\n' .. lease .. '\n' .. member)
    restored = restored + 1
  end
  redis.call('ZADD', KEYS[1], expiry, key)
end
return restored
",
    )
});

/// KEYS: lease expiries. ARGV: key prefix, then (channel, lease) pairs.
/// Ends each lease that still exists and announces it.
pub static RELEASE_LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local released = 0
for i = 2, #ARGV, 2 do
  local channel, lease = ARGV[i], ARGV[i + 1]
  redis.call('HDEL', ARGV[1] .. 'p:' .. channel, lease)
  if redis.call('ZREM', KEYS[1], channel .. '\n' .. lease) == 1 then
    redis.call('PUBLISH', ARGV[1] .. 'c:' .. channel, 'L\n' .. lease)
    released = released + 1
  end
end
return released
",
    )
});

/// KEYS: positions hash, position expiries. ARGV: user, position JSON,
/// TTL ms, channel, pub/sub channel. Keeps a sharer's position until the
/// TTL and sends it to every node.
pub static LOCATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4] .. '\n' .. ARGV[1])
redis.call('PUBLISH', ARGV[5], 'V\n' .. ARGV[2])
return 1
",
    )
});

/// KEYS: positions hash, position expiries. ARGV: user, channel, pub/sub
/// channel. Ends a sharer's position, announcing it if there was one.
pub static STOP_SHARING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[2] .. '\n' .. ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[3], 'G\nstopped\n' .. ARGV[1])
  return 1
end
return 0
",
    )
});

/// KEYS: lease expiries, position expiries. ARGV: key prefix, most to end
/// of each. Ends the expired leases (their node stopped refreshing them:
/// it died or lost Redis) and positions (their sharer stopped sending),
/// and announces each once, whichever node runs it.
pub static PURGE_LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, key in ipairs(expired) do
  local cut = string.find(key, '\n', 1, true)
  local channel = string.sub(key, 1, cut - 1)
  local lease = string.sub(key, cut + 1)
  redis.call('ZREM', KEYS[1], key)
  redis.call('HDEL', ARGV[1] .. 'p:' .. channel, lease)
  redis.call('PUBLISH', ARGV[1] .. 'c:' .. channel, 'L\n' .. lease)
end
local positions = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, key in ipairs(positions) do
  local cut = string.find(key, '\n', 1, true)
  local channel = string.sub(key, 1, cut - 1)
  local user = string.sub(key, cut + 1)
  redis.call('ZREM', KEYS[2], key)
  redis.call('HDEL', ARGV[1] .. 'v:' .. channel, user)
  redis.call('PUBLISH', ARGV[1] .. 'c:' .. channel, 'G\nexpired\n' .. user)
end
return #expired + #positions
",
    )
});
