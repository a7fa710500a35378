//! Feast's entity key serialization, version 3: the identity of an entity in
//! every online store, and of a feature row in point-in-time joins.

use super::JoinKeyValue;

/// Appends the version-3 serialization of an entity key: join keys sorted by
/// name, then their values in the same order, every integer little-endian.
pub fn serialize_entity_key(out: &mut Vec<u8>, keys: &[(&str, JoinKeyValue<'_>)]) {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    if keys.len() > 1 {
        order.sort_by_key(|&i| keys[i].0);
    }
    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for &i in &order {
        let name = keys[i].0.as_bytes();
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
    }
    for &i in &order {
        let (ty, payload): (u32, &[u8]) = match &keys[i].1 {
            JoinKeyValue::Bytes(b) => (1, b),
            JoinKeyValue::String(s) => (2, s.as_bytes()),
            JoinKeyValue::Int32(v) => {
                write_key_value(out, 3, &v.to_le_bytes());
                continue;
            }
            JoinKeyValue::Int64(v) => {
                write_key_value(out, 4, &v.to_le_bytes());
                continue;
            }
        };
        write_key_value(out, ty, payload);
    }
}

/// A serialized entity key as `join_key=value` pairs joined by `,`
/// (`driver_id=1001`), for messages; `None` if the bytes are not a
/// version-3 entity key.
pub fn entity_key_text(key: &[u8]) -> Option<String> {
    fn u32_at(b: &[u8], at: &mut usize) -> Option<u32> {
        let v = u32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        Some(v)
    }
    fn chunk<'a>(b: &'a [u8], at: &mut usize) -> Option<(u32, &'a [u8])> {
        let ty = u32_at(b, at)?;
        let len = u32_at(b, at)? as usize;
        let v = b.get(*at..*at + len)?;
        *at += len;
        Some((ty, v))
    }
    let mut at = 0;
    let n = u32_at(key, &mut at)? as usize;
    // Each join key takes at least 8 bytes: a count beyond that is not a key.
    if n > key.len() / 8 {
        return None;
    }
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(std::str::from_utf8(chunk(key, &mut at)?.1).ok()?);
    }
    let mut out = Vec::with_capacity(n);
    for name in names {
        let (ty, v) = chunk(key, &mut at)?;
        let value = match ty {
            1 => v.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            2 => std::str::from_utf8(v).ok()?.to_owned(),
            3 => i32::from_le_bytes(v.try_into().ok()?).to_string(),
            4 => i64::from_le_bytes(v.try_into().ok()?).to_string(),
            _ => return None,
        };
        out.push(format!("{name}={value}"));
    }
    (at == key.len()).then(|| out.join(","))
}

fn write_key_value(out: &mut Vec<u8>, ty: u32, payload: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn entity_key_v3_matches_feast() {
        let mut out = Vec::new();
        serialize_entity_key(&mut out, &[("driver_id", JoinKeyValue::Int64(1001))]);
        assert_eq!(
            hex(&out),
            "0100000002000000090000006472697665725f69640400000008000000e903000000000000"
        );
        assert_eq!(out.len(), 37);

        let mut out = Vec::new();
        serialize_entity_key(
            &mut out,
            &[
                ("zeta", JoinKeyValue::String("z")),
                ("alpha", JoinKeyValue::Int64(2)),
            ],
        );
        assert_eq!(
            hex(&out),
            "02000000\
             02000000 05000000 616c706861 02000000 04000000 7a657461\
             04000000 08000000 0200000000000000 02000000 01000000 7a"
                .replace(' ', "")
        );
    }

    #[test]
    fn entity_keys_read_back_as_text() {
        let mut key = Vec::new();
        serialize_entity_key(
            &mut key,
            &[
                ("merchant_id", JoinKeyValue::Int32(7)),
                ("card_id", JoinKeyValue::String("c-007")),
            ],
        );
        assert_eq!(
            entity_key_text(&key).as_deref(),
            Some("card_id=c-007,merchant_id=7")
        );
        let mut key = Vec::new();
        serialize_entity_key(&mut key, &[("driver_id", JoinKeyValue::Int64(1001))]);
        assert_eq!(entity_key_text(&key).as_deref(), Some("driver_id=1001"));
        assert_eq!(entity_key_text(&key[..key.len() - 1]), None);
        assert_eq!(entity_key_text(b"junk"), None);
    }
}
