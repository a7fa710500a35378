//! Feast's Redis layout: one hash per entity key and project (the key is
//! the version-3 entity key followed by the project name), a field per
//! feature named by the little-endian murmur3-32 of `view:feature`, and
//! `_ts:view`, the event time as a protobuf `Timestamp`. Beside them,
//! feast-rs's own `_created:view` (`created@event`, microseconds), which
//! Feast's reader does not ask for.

pub(crate) use crate::definition::proto::{read_timestamp, write_timestamp};

/// MurmurHash3, x86 32-bit, the hash Feast names feature fields with.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The hash field of a feature: `murmur3_32("view:feature")`, little-endian.
pub fn feature_field(view: &str, feature: &str) -> [u8; 4] {
    murmur3_32(format!("{view}:{feature}").as_bytes(), 0).to_le_bytes()
}

/// The event-time field of a view.
pub fn timestamp_field(view: &str) -> String {
    format!("_ts:{view}")
}

/// The created-time field of a view: `created@event`.
pub fn created_field(view: &str) -> String {
    format!("_created:{view}")
}

/// Escapes Redis glob characters.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn feature_fields_match_feasts_mmh3() {
        assert_eq!(
            hex(&feature_field("driver_hourly_stats", "conv_rate")),
            "6160e3da"
        );
        assert_eq!(
            hex(&feature_field("driver_hourly_stats", "acc_rate")),
            "fa5e58ad"
        );
        assert_eq!(
            hex(&feature_field("driver_hourly_stats", "avg_daily_trips")),
            "18a5e5a3"
        );
        // The reference vectors of MurmurHash3_x86_32.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn timestamps_are_protobuf_bytes() {
        // 2025-01-01T12:00:00.123456Z, Feast's reference row.
        let t = 1_735_732_800_123_456;
        let mut b = Vec::new();
        write_timestamp(&mut b, t);
        assert_eq!(hex(&b), "08c0dcd4bb06108094ef3a");
        assert_eq!(read_timestamp(&b), Ok(t));
        assert_eq!(
            timestamp_field("driver_hourly_stats"),
            "_ts:driver_hourly_stats"
        );
    }
}
