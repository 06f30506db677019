//! An interaction as Discord sends it, read in place: strings borrow from the
//! request body where JSON needs no unescaping, so the ack path copies only
//! what outlives the request (the token, the principals, the command text).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON string, borrowed from the body when it has no escapes, else owned.
///
/// serde borrows a bare `Cow<str>` field with `#[serde(borrow)]`, but not one
/// inside an `Option` or a `Vec`; this type borrows wherever it sits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Reads a string as a [`Text`]; [`OptionValue`]'s visitor hands its strings here.
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A typed option's value: the three types `/wa` registers (string, integer,
/// boolean); anything else is kept as `Other` and ignored, as before.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum OptionValue<'a> {
    Text(Text<'a>),
    Int(i64),
    Bool(bool),
    #[default]
    Other,
}

impl<'a> OptionValue<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            OptionValue::Text(t) => Some(t),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            OptionValue::Int(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            OptionValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for OptionValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = OptionValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an option value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                TextVisitor.visit_borrowed_str(v).map(OptionValue::Text)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                TextVisitor.visit_str(v).map(OptionValue::Text)
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                TextVisitor.visit_string(v).map(OptionValue::Text)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(OptionValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(OptionValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(OptionValue::Other, OptionValue::Int))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(OptionValue::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptionValue::Other)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptionValue::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OptionValue::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(OptionValue::Other)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

#[derive(Deserialize)]
pub(crate) struct Interaction<'a> {
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub token: Option<Text<'a>>,
    #[serde(borrow)]
    pub channel_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub member: Option<Member<'a>>,
    #[serde(borrow)]
    pub user: Option<User<'a>>,
    #[serde(borrow)]
    pub data: Option<Data<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct Member<'a> {
    #[serde(borrow)]
    pub user: User<'a>,
    #[serde(default, borrow)]
    pub roles: Vec<Text<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct User<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
}

#[derive(Deserialize)]
pub(crate) struct Data<'a> {
    #[serde(default, borrow)]
    pub options: Vec<CommandOption<'a>>,
    #[serde(borrow)]
    pub custom_id: Option<Text<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct CommandOption<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub value: OptionValue<'a>,
    #[serde(default, borrow)]
    pub options: Vec<CommandOption<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WIRE: &str = r#"{"type":2,"id":"1","token":"tok","channel_id":"c1",
        "member":{"user":{"id":"77"},"roles":["5","6"]},
        "data":{"name":"wa","options":[{"name":"add","type":1,"options":[
            {"name":"group","type":3,"value":"Sales \"EU\" \u00e9"},
            {"name":"numbers","type":3,"value":"+4915112345678"},
            {"name":"dry_run","type":5,"value":true},
            {"name":"limit","type":4,"value":5},
            {"name":"odd","type":10,"value":1.5},
            {"name":"odder","value":{"a":[1,2]}}]}]}}"#;

    fn options<'a>(i: &'a Interaction<'a>) -> &'a [CommandOption<'a>] {
        &i.data.as_ref().unwrap().options[0].options
    }

    #[test]
    fn reads_the_wire_shape_borrowing_where_it_can() {
        let i: Interaction = serde_json::from_str(WIRE).unwrap();
        assert_eq!(i.kind, 2);
        assert!(matches!(i.token.as_ref().unwrap().0, Cow::Borrowed("tok")));
        let roles: Vec<&str> = i.member.as_ref().unwrap().roles.iter().map(|r| &**r).collect();
        assert_eq!(roles, ["5", "6"]);
        let o = options(&i);
        // Escaped text is unescaped into an owned string; plain text is borrowed.
        assert_eq!(o[0].value, OptionValue::Text(Text(Cow::Owned("Sales \"EU\" é".into()))));
        assert!(matches!(
            &o[1].value,
            OptionValue::Text(Text(Cow::Borrowed("+4915112345678")))
        ));
        assert_eq!(o[2].value.as_bool(), Some(true));
        assert_eq!(o[3].value.as_i64(), Some(5));
        assert_eq!((&o[4].value, &o[5].value), (&OptionValue::Other, &OptionValue::Other));
        assert_eq!(o[3].value.as_str(), None);
    }

    #[test]
    fn reads_a_json_value_as_the_gateway_passes_it() {
        let raw: serde_json::Value = serde_json::from_str(WIRE).unwrap();
        let i = Interaction::deserialize(&raw).unwrap();
        assert_eq!(options(&i)[0].value.as_str(), Some("Sales \"EU\" é"));
        assert_eq!(options(&i)[3].value.as_i64(), Some(5));
        let ping = json!({"type": 1});
        let none = Interaction::deserialize(&ping).unwrap();
        assert!(none.id.is_none() && none.data.is_none());
    }

    #[test]
    fn refuses_what_is_not_an_interaction() {
        for bad in [
            r#"{"type":2,"id":5}"#,
            r#"{"id":"1"}"#,
            r#"{"type":2,"member":{"roles":[]}}"#,
            "[",
            "",
        ] {
            assert!(serde_json::from_str::<Interaction>(bad).is_err(), "{bad}");
        }
    }
}
