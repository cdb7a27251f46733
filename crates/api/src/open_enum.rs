//! Enumerations of the API's status values that keep a value they do not know. A minor release
//! may add a value (the compatibility page): a client older than the controller must still read
//! the status, so a value it does not know is kept as written (`Other`) and written back
//! unchanged, and conversions between API versions pass it through. The CRD's schema lists the
//! known values, so that only they can be written at the versions that enumerate them.

/// `open_enum!(pub Name, "what it is" { Variant => "Value", ... })`: the enum, its string
/// forms, serde as that string, and a JSON schema of `type: string` with the known values.
macro_rules! open_enum {
    ($(#[$attr:meta])* $vis:vis $name:ident { $($(#[$vattr:meta])* $variant:ident => $value:literal,)+ }) => {
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vattr])* $variant,)+
            /// A value this version does not know (written by a newer one), kept as written.
            Other(String),
        }

        impl $name {
            /// Every known value, in the schema's order.
            pub const KNOWN: &'static [&'static str] = &[$($value),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $value,)+
                    $name::Other(value) => value,
                }
            }

            pub fn parse(value: &str) -> $name {
                match value {
                    $($value => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> $name {
                $name::parse(value)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::parse(&value))
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": $name::KNOWN})
            }
        }
    };
}

pub(crate) use open_enum;
