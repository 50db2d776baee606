//! Conversion of borrowed records into owned (`'static`) ones, and the macro that
//! declares every model struct once (fields, `into_owned`, canonical encoding).

use std::borrow::Cow;

/// Turns a value that may borrow text into one that owns it.
pub(crate) trait IntoOwned {
    /// The owned (`'static`) form.
    type Owned;
    /// Converts, copying borrowed text.
    fn into_owned(self) -> Self::Owned;
}

impl IntoOwned for Cow<'_, str> {
    type Owned = Cow<'static, str>;
    fn into_owned(self) -> Cow<'static, str> {
        match self {
            Cow::Borrowed(s) => Cow::Owned(s.to_owned()),
            Cow::Owned(s) => Cow::Owned(s),
        }
    }
}

impl<T: IntoOwned> IntoOwned for Option<T> {
    type Owned = Option<T::Owned>;
    fn into_owned(self) -> Self::Owned {
        self.map(IntoOwned::into_owned)
    }
}

impl<T: IntoOwned> IntoOwned for Vec<T> {
    type Owned = Vec<T::Owned>;
    fn into_owned(self) -> Self::Owned {
        self.into_iter().map(IntoOwned::into_owned).collect()
    }
}

macro_rules! plain_into_owned {
    ($($t:ty),*) => {$(
        impl IntoOwned for $t {
            type Owned = $t;
            fn into_owned(self) -> $t { self }
        }
    )*};
}
plain_into_owned!(u64, u32, u16, bool);

/// Declares a model struct with a lifetime `'a`, deriving the common traits, and
/// generates `into_owned` and the canonical encoding (fields in declaration order).
macro_rules! model_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<'a> {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name<'a> {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name<'_> {
            /// Converts into a form that owns all its text, free of the input buffer.
            #[must_use]
            pub fn into_owned(self) -> $name<'static> {
                $name { $( $field: $crate::owned::IntoOwned::into_owned(self.$field), )* }
            }
        }

        impl $crate::owned::IntoOwned for $name<'_> {
            type Owned = $name<'static>;
            fn into_owned(self) -> $name<'static> {
                $name::into_owned(self)
            }
        }

        impl $crate::hash::Canonical for $name<'_> {
            fn encode(&self, out: &mut Vec<u8>) {
                $( $crate::hash::Canonical::encode(&self.$field, out); )*
            }
        }

        // The borrowing decoder (see `crate::borrow`): the same JSON as the derive.
        impl<'a> serde::Deserialize<'a> for $crate::borrow::Borrowed<$name<'a>> {
            fn deserialize<D: serde::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'a> serde::de::Visitor<'a> for V {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name)))
                    }
                    fn visit_map<M: serde::de::MapAccess<'a>>(
                        self,
                        mut map: M,
                    ) -> Result<$name<'a>, M::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<$crate::borrow::Key<'a>>()? {
                            $(
                                if key.0 == $crate::borrow::json_name(stringify!($field)) {
                                    out.$field =
                                        map.next_value::<$crate::borrow::Borrowed<$ty>>()?.0;
                                    continue;
                                }
                            )*
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V).map($crate::borrow::Borrowed)
            }
        }
    };
}
pub(crate) use model_struct;
