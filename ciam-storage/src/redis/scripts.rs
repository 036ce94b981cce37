//! The Lua scripts behind every multi-key operation.
//!
//! Times arrive as decimal nanosecond strings and are compared exactly with `cmp` (Lua numbers
//! are doubles, which would round them). Keys derived from stored values are built from the
//! prefix passed in `ARGV[1]` with the same names as `RedisStore::key`.

use redis::Script;

/// Helpers shared by the scripts.
const PRELUDE: &str = r#"
-- Compares two decimal integer strings exactly: -1, 0 or 1.
local function cmp(a, b)
  local an, bn = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if an ~= bn then
    if an then return -1 else return 1 end
  end
  if an then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then
    if #a < #b then return -1 else return 1 end
  end
  if a == b then return 0 end
  if a < b then return -1 else return 1 end
end

-- When Redis may reclaim a record that ends at `ns` (Unix ms on the Redis clock, as a string):
-- `grace_ms` after the later of its end and now.
local function gc_at(ns, grace_ms)
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local end_ms = math.floor((tonumber(ns) or 0) / 1000000)
  if end_ms < now_ms then end_ms = now_ms end
  return string.format('%.0f', end_ms + grace_ms)
end

-- Extends an index key's life to `ms` (never shortens it).
local function keep_until(key, ms)
  if redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, ms)
  else
    redis.call('PEXPIREAT', key, ms, 'GT')
  end
end
"#;

/// KEYS: session, id mapping, user set, expiry index.
/// ARGV: id, token hex, created ns, expiry ns, grace ms, field/value pairs...
/// Returns 1, or 0 when the token hash or the id is taken.
const INSERT_SESSION: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local gc = gc_at(ARGV[4], tonumber(ARGV[5]))
redis.call('PEXPIREAT', KEYS[1], gc)
redis.call('SET', KEYS[2], ARGV[2], 'PXAT', gc)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
keep_until(KEYS[3], gc)
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 1
"#;

/// KEYS: id mapping, expiry index.
/// ARGV: prefix, id, last_seen ns, idle ns, grace ms, ip ('' keeps the stored one).
/// Returns 1, or 0 when the session is gone.
const TOUCH_SESSION: &str = r#"
local tok = redis.call('GET', KEYS[1])
if not tok then return 0 end
local k = ARGV[1] .. 's:' .. tok
local stored = redis.call('HMGET', k, 'absolute', 'user')
local abs, user = stored[1], stored[2]
if not abs then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 0
end
if ARGV[6] ~= '' then
  redis.call('HSET', k, 'last_seen', ARGV[3], 'idle', ARGV[4], 'ip', ARGV[6])
else
  redis.call('HSET', k, 'last_seen', ARGV[3], 'idle', ARGV[4])
end
local ends = ARGV[4]
if cmp(abs, ends) < 0 then ends = abs end
redis.call('ZADD', KEYS[2], ends, ARGV[2])
local gc = gc_at(ends, tonumber(ARGV[5]))
redis.call('PEXPIREAT', k, gc)
redis.call('PEXPIREAT', KEYS[1], gc)
if user then keep_until(ARGV[1] .. 'us:' .. user, gc) end
return 1
"#;

/// KEYS: user set. ARGV: prefix.
/// Returns the field/value arrays of the user's sessions (any order), dropping index entries
/// whose session Redis reclaimed.
const SESSIONS_FOR_USER: &str = r#"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local tok = redis.call('GET', ARGV[1] .. 'sid:' .. id)
  local h = {}
  if tok then h = redis.call('HGETALL', ARGV[1] .. 's:' .. tok) end
  if #h == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = h
  end
end
return out
"#;

/// KEYS: id mapping, user set, expiry index. ARGV: prefix, id, user.
/// Returns 1 when the user's session was deleted, else 0.
const DELETE_SESSION: &str = r#"
local tok = redis.call('GET', KEYS[1])
if not tok then return 0 end
local k = ARGV[1] .. 's:' .. tok
local owner = redis.call('HGET', k, 'user')
if not owner then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 0
end
if owner ~= ARGV[3] then return 0 end
redis.call('DEL', k, KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"#;

/// KEYS: user set, expiry index. ARGV: prefix, id to keep ('' for none).
/// Returns how many sessions were deleted.
const DELETE_USER_SESSIONS: &str = r#"
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    local sk = ARGV[1] .. 'sid:' .. id
    local tok = redis.call('GET', sk)
    if tok then
      n = n + redis.call('DEL', ARGV[1] .. 's:' .. tok)
      redis.call('DEL', sk)
    end
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  end
end
return n
"#;

/// KEYS: expiry index. ARGV: prefix, now ns, batch size.
/// Returns {deleted, candidates looked at, index entries removed}.
const PURGE_EXPIRED: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local n, removed = 0, 0
for _, id in ipairs(ids) do
  local sk = ARGV[1] .. 'sid:' .. id
  local tok = redis.call('GET', sk)
  local k = nil
  local h = {}
  if tok then
    k = ARGV[1] .. 's:' .. tok
    h = redis.call('HMGET', k, 'idle', 'absolute', 'user')
  end
  if not h[1] or not h[2] then
    redis.call('ZREM', KEYS[1], id)
    if tok then redis.call('DEL', sk) end
    removed = removed + 1
  elseif cmp(ARGV[2], h[1]) >= 0 or cmp(ARGV[2], h[2]) >= 0 then
    redis.call('DEL', k, sk)
    redis.call('ZREM', KEYS[1], id)
    if h[3] then redis.call('ZREM', ARGV[1] .. 'us:' .. h[3], id) end
    n = n + 1
    removed = removed + 1
  end
end
return {n, #ids, removed}
"#;

/// KEYS: challenge, then the user's index for the purpose when the challenge has a user.
/// ARGV: secret hex, created ns, expires ns, grace ms, field/value pairs...
/// Returns 1, or 0 when the secret hash is taken.
const INSERT_CHALLENGE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local gc = gc_at(ARGV[3], tonumber(ARGV[4]))
redis.call('PEXPIREAT', KEYS[1], gc)
if KEYS[2] then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  keep_until(KEYS[2], gc)
end
return 1
"#;

/// KEYS: challenge. ARGV: prefix, secret hex, purpose, now ns.
/// Returns the challenge's field/value array, or nil when it is missing, of another purpose
/// (left in place) or expired (deleted).
const CONSUME_CHALLENGE: &str = r#"
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
if f['purpose'] ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1])
if f['user'] then
  redis.call('ZREM', ARGV[1] .. 'cu:' .. f['user'] .. ':' .. ARGV[3], ARGV[2])
end
if f['expires'] and cmp(ARGV[4], f['expires']) >= 0 then return false end
return h
"#;

/// KEYS: the user's index for the purpose. ARGV: prefix, since ns, now ns.
/// Returns how many challenges were created at or after `since` and are live at `now`.
const COUNT_CHALLENGES: &str = r#"
local n = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  local h = redis.call('HMGET', ARGV[1] .. 'c:' .. m, 'created', 'expires')
  if not h[1] or not h[2] then
    redis.call('ZREM', KEYS[1], m)
  elseif cmp(h[1], ARGV[2]) >= 0 and cmp(ARGV[3], h[2]) < 0 then
    n = n + 1
  end
end
return n
"#;

/// KEYS: the user's index for the purpose. ARGV: prefix, user, purpose.
/// Returns how many challenges were deleted.
const DELETE_CHALLENGES: &str = r#"
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[1] .. 'c:' .. m
  local h = redis.call('HMGET', k, 'user', 'purpose')
  if h[1] == ARGV[2] and h[2] == ARGV[3] then
    n = n + redis.call('DEL', k)
  end
end
redis.call('DEL', KEYS[1])
return n
"#;

/// The compiled scripts (each knows its SHA-1 for `EVALSHA`).
pub(super) struct Scripts {
    pub(super) insert_session: Script,
    pub(super) touch_session: Script,
    pub(super) sessions_for_user: Script,
    pub(super) delete_session: Script,
    pub(super) delete_user_sessions: Script,
    pub(super) purge_expired: Script,
    pub(super) insert_challenge: Script,
    pub(super) consume_challenge: Script,
    pub(super) count_challenges: Script,
    pub(super) delete_challenges: Script,
}

fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            insert_session: with_prelude(INSERT_SESSION),
            touch_session: with_prelude(TOUCH_SESSION),
            sessions_for_user: with_prelude(SESSIONS_FOR_USER),
            delete_session: with_prelude(DELETE_SESSION),
            delete_user_sessions: with_prelude(DELETE_USER_SESSIONS),
            purge_expired: with_prelude(PURGE_EXPIRED),
            insert_challenge: with_prelude(INSERT_CHALLENGE),
            consume_challenge: with_prelude(CONSUME_CHALLENGE),
            count_challenges: with_prelude(COUNT_CHALLENGES),
            delete_challenges: with_prelude(DELETE_CHALLENGES),
        }
    }

    /// Every script, for preloading.
    pub(super) fn all(&self) -> [&Script; 10] {
        [
            &self.insert_session,
            &self.touch_session,
            &self.sessions_for_user,
            &self.delete_session,
            &self.delete_user_sessions,
            &self.purge_expired,
            &self.insert_challenge,
            &self.consume_challenge,
            &self.count_challenges,
            &self.delete_challenges,
        ]
    }
}
