//! The Lua that channels_redis runs, kept byte-identical where Python has it.

/// `channels_redis/core.py: RedisChannelLayer.group_send` (4.2.0, lines 555-568), including its
/// indentation, so that Redis caches one script for both implementations.
///
/// `KEYS` = queue keys on one shard; `ARGV` = one payload per key, one capacity per key, the
/// current time (float seconds: the ZADD score) and the expiry (an **integer** string: EXPIRE
/// rejects `60.0`). Returns how many keys were at capacity; their message is dropped silently.
pub const GROUP_SEND_LUA: &str = "
                local over_capacity = 0
                local current_time = ARGV[#ARGV - 1]
                local expiry = ARGV[#ARGV]
                for i=1,#KEYS do
                    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
                        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
                        redis.call('EXPIRE', KEYS[i], expiry)
                    else
                        over_capacity = over_capacity + 1
                    end
                end
                return over_capacity
            ";

/// `RedisChannelLayer.send` (core.py lines 203-217) is four separate round trips: trim expired
/// members, `ZCOUNT >= capacity` → `ChannelFull`, `ZADD`, `EXPIRE`. This does the same steps
/// atomically in one (the recipe's `SEND_LUA`, channels_redis.md §4(b)).
///
/// `KEYS[1]` = queue key; `ARGV` = payload, capacity, now (float seconds), expiry (integer).
/// Returns 1 when stored, 0 when the queue is full.
pub const SEND_LUA: &str = "
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, math.floor(tonumber(ARGV[3])) - tonumber(ARGV[4]))
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return 1
end
return 0
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_send_lua_is_python_text() {
        // SHA1 of the literal in channels_redis 4.2.0 core.py (read with `ast` in the legacy venv:
        // `hashlib.sha1(group_send_lua.encode()).hexdigest()`).
        assert_eq!(
            redis::Script::new(GROUP_SEND_LUA).get_hash(),
            "5bcf6ea1d6c02c00f44e7030f4f9772a199deaf1"
        );
    }
}
