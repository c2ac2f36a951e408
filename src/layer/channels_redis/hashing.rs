//! Which Redis host ("shard") a name lives on, exactly as channels_redis decides.

/// `channels_redis/utils.py: _consistent_hash` (4.2.0):
///
/// ```python
/// if ring_size == 1: return 0
/// bigval = binascii.crc32(value.encode("utf8")) & 0xFFF
/// ring_divisor = 4096 / float(ring_size)
/// return int(bigval / ring_divisor)
/// ```
///
/// Done in f64 like Python (IEEE doubles both sides, `int()` truncates), so the result is the
/// same for every ring size, not only the small ones. Names are hashed without the key prefix:
/// groups by group name, queues by `non_local_name`.
pub fn consistent_hash(value: &str, ring_size: usize) -> usize {
    if ring_size <= 1 {
        return 0;
    }
    let bigval = crc32fast::hash(value.as_bytes()) & 0xfff;
    let ring_divisor = 4096.0 / ring_size as f64;
    (f64::from(bigval) / ring_divisor) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_host_is_always_zero() {
        assert_eq!(consistent_hash("anything", 1), 0);
        assert_eq!(consistent_hash("anything", 0), 0);
    }

    #[test]
    fn matches_python_vectors() {
        // From the legacy venv: `channels_redis.utils._consistent_hash(name, n)`.
        let vectors: &[(&str, usize, usize)] = &[
            ("chat_lobby", 2, 1),
            ("chat_lobby", 3, 1),
            ("chat_lobby", 7, 3),
            ("specific.web1!", 2, 0),
            ("specific.web1!", 3, 1),
            ("specific.web1!", 7, 2),
            ("", 5, 0),
        ];
        for &(name, ring, want) in vectors {
            assert_eq!(consistent_hash(name, ring), want, "{name:?} over {ring}");
        }
    }

    #[test]
    fn always_in_range() {
        for ring in 1..=64 {
            for i in 0..200 {
                assert!(consistent_hash(&format!("chat_{i}"), ring) < ring);
            }
        }
    }
}
