//! `type:`-tagged blocks (`source: {type: mllp, ...}`) that keep precise
//! error locations.
//!
//! Owns one thing: dispatching on a `type` key without buffering the block.
//! serde's internally tagged enums buffer the whole block into an
//! intermediate value first, which throws away the YAML line and column of
//! every later error ("unknown field `prot`" would point at the block's
//! first line). Here the keys before `type` (usually just `name`) are
//! buffered and the rest is streamed from the YAML deserializer itself, so
//! an error in them names its own line and column.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};

/// An enum written in config as a block with a `type` key.
pub trait TaggedEnum: Sized {
    /// The accepted `type` values.
    const TAGS: &'static [&'static str];
    /// What the block is, for messages ("source", "destination").
    const WHAT: &'static str;
    /// Deserializes the variant named by `tag` from the rest of the block.
    fn deserialize_variant<'de, D: Deserializer<'de>>(tag: &str, rest: D)
    -> Result<Self, D::Error>;
}

/// Deserializes a [`TaggedEnum`]; use from a `Deserialize` impl.
pub fn deserialize_tagged<'de, D: Deserializer<'de>, T: TaggedEnum>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(TaggedVisitor::<T>(PhantomData))
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: TaggedEnum> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} block with `type: {}`",
            T::WHAT,
            T::TAGS.join(" | ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut buffered = VecDeque::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "type" {
                let tag: String = map.next_value()?;
                if !T::TAGS.contains(&tag.as_str()) {
                    return Err(A::Error::unknown_variant(&tag, T::TAGS));
                }
                let rest = PrefixedMap {
                    buffered,
                    inner: map,
                };
                return T::deserialize_variant(&tag, MapAccessDeserializer::new(rest));
            }
            let value: serde_json::Value = map.next_value()?;
            buffered.push_back((key, value));
        }
        Err(A::Error::custom(format!(
            "this {} has no `type`; expected one of: {}",
            T::WHAT,
            T::TAGS.join(", ")
        )))
    }
}

/// The keys read before `type`, then the rest of the real map.
struct PrefixedMap<A> {
    buffered: VecDeque<(String, serde_json::Value)>,
    inner: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for PrefixedMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if let Some((k, _)) = self.buffered.front() {
            return seed
                .deserialize(StringDeserializer::<A::Error>::new(k.clone()))
                .map(Some);
        }
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        if let Some((k, v)) = self.buffered.pop_front() {
            return seed
                .deserialize(v)
                .map_err(|e| A::Error::custom(format!("`{k}`: {e}")));
        }
        self.inner.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct A {
        name: String,
        port: u16,
    }

    #[derive(Debug, PartialEq)]
    enum E {
        A(A),
    }

    impl TaggedEnum for E {
        const TAGS: &'static [&'static str] = &["a"];
        const WHAT: &'static str = "thing";
        fn deserialize_variant<'de, D: Deserializer<'de>>(
            tag: &str,
            rest: D,
        ) -> Result<Self, D::Error> {
            match tag {
                "a" => A::deserialize(rest).map(E::A),
                _ => Err(D::Error::unknown_variant(tag, Self::TAGS)),
            }
        }
    }

    impl<'de> Deserialize<'de> for E {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_tagged(d)
        }
    }

    #[derive(Debug, Deserialize)]
    struct Top {
        #[allow(dead_code)]
        thing: E,
    }

    fn err(y: &str) -> String {
        serde_saphyr::from_str::<Top>(y)
            .unwrap_err()
            .without_snippet()
            .to_string()
    }

    #[test]
    fn dispatches_and_keeps_locations() {
        let ok: Top = serde_saphyr::from_str("thing:\n  name: x\n  type: a\n  port: 9\n").unwrap();
        assert_eq!(
            ok.thing,
            E::A(A {
                name: "x".into(),
                port: 9
            })
        );
        let e = err("thing:\n  name: x\n  type: a\n  port: 9\n  prot: 1\n");
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("unknown field `prot`"), "{e}");
        let e = err("thing:\n  type: a\n  name: x\n  port: nope\n");
        assert!(e.contains("line 4"), "{e}");
        let e = err("thing:\n  type: b\n");
        assert!(e.contains("unknown variant `b`"), "{e}");
        let e = err("thing:\n  name: x\n");
        assert!(e.contains("has no `type`"), "{e}");
    }
}
