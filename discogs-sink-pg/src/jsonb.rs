//! JSONB sent as raw wire bytes: version byte `1` followed by the JSON text, so records go
//! from the model to the server without a `serde_json::Value` in between.

use bytes::{BufMut, BytesMut};
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};

/// JSON text already encoded, bound as a `jsonb` parameter or COPY field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonbText<'a>(pub(crate) &'a [u8]);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.reserve(self.0.len() + 1);
        out.put_u8(1);
        out.put_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}
