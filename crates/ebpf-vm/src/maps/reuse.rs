//! Whether an existing map (one pinned under a path, or handed over as a replacement) may stand in
//! for a map an object defines. libbpf refuses to reuse a pinned map unless its type, key size,
//! value size, max_entries, map_flags and map_extra all equal the object's definition
//! (`map_is_reuse_compat`); a program verified and relocated against one shape must never be given
//! a map of another, whose values it would read and write past their end.

use crate::error::ErrorCode;

use super::{MapDef, MapError, MapResult};

/// The fields `map_is_reuse_compat` compares, written out for messages.
fn shape(def: &MapDef) -> String {
    format!(
        "{} key_size {} value_size {} max_entries {} map_flags 0x{:x} map_extra {}",
        def.map_type.name(),
        def.key_size,
        def.value_size,
        def.max_entries,
        def.flags,
        def.map_extra
    )
}

/// Ok when `found` has the shape `wanted` describes; otherwise EINVAL naming the map (`wanted`'s
/// name), both shapes and `source` (where `found` came from, e.g. "the map pinned at /sys/fs/bpf/x").
pub fn check_reuse(wanted: &MapDef, found: &MapDef, source: &str) -> MapResult<()> {
    let same = wanted.map_type == found.map_type
        && wanted.key_size == found.key_size
        && wanted.value_size == found.value_size
        && wanted.max_entries == found.max_entries
        && wanted.flags == found.flags
        && wanted.map_extra == found.map_extra;
    if same {
        return Ok(());
    }
    Err(MapError::new(
        ErrorCode::Einval,
        format!(
            "map '{}': {source} is {}, but the object wants {}",
            wanted.name,
            shape(found),
            shape(wanted)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MapType;

    #[test]
    fn every_compared_field_refuses_alone_and_the_message_names_both_shapes() {
        let wanted = MapDef::new(MapType::Array, 4, 8, 1).with_name("counts");
        assert!(check_reuse(&wanted, &wanted.clone().with_name("other"), "x").is_ok());
        let variants = [
            MapDef::new(MapType::PercpuArray, 4, 8, 1),
            MapDef::new(MapType::Array, 8, 8, 1),
            MapDef::new(MapType::Array, 4, 16, 1),
            MapDef::new(MapType::Array, 4, 8, 2),
            MapDef::new(MapType::Array, 4, 8, 1).with_flags(1 << 10),
            MapDef::new(MapType::Array, 4, 8, 1).with_map_extra(3),
        ];
        for found in variants {
            let e = check_reuse(&wanted, &found, "the map pinned at /p").unwrap_err();
            assert_eq!(e.code, ErrorCode::Einval);
            assert!(e
                .message
                .starts_with("map 'counts': the map pinned at /p is "));
            assert!(e.message.contains(&shape(&found)), "{}", e.message);
            assert!(
                e.message
                    .ends_with("the object wants array key_size 4 value_size 8 max_entries 1 map_flags 0x0 map_extra 0"),
                "{}",
                e.message
            );
        }
        // Key size: a hash of another key size.
        let hash = MapDef::new(MapType::Hash, 16, 2, 7);
        let e = check_reuse(&wanted, &hash, "the replacement").unwrap_err();
        assert_eq!(
            e.message,
            "map 'counts': the replacement is hash key_size 16 value_size 2 max_entries 7 \
             map_flags 0x0 map_extra 0, but the object wants array key_size 4 value_size 8 \
             max_entries 1 map_flags 0x0 map_extra 0"
        );
    }
}
