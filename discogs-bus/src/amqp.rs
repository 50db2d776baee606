//! What the RabbitMQ publisher and consumer share: connecting, message properties and
//! headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use discogs_model::wire::{Message, MessageType, CONTENT_TYPE, SCHEMA_VERSION};
use discogs_model::RecordKind;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::BusError;

/// Names of the AMQP headers on every message, so that tools (the management UI, the
/// dashboard, a dead-letter inspector) can tell what a message is without decoding it.
pub mod headers {
    /// `batch`, `file_complete` or `extraction_complete`.
    pub const TYPE: &str = "discogs-type";
    /// `artists`, `labels`, `masters` or `releases` (absent on `extraction_complete`).
    pub const KIND: &str = "discogs-kind";
    /// The dump version, e.g. `20260101`.
    pub const VERSION: &str = "discogs-version";
    /// The dump file's name (batches and `file_complete`).
    pub const FILE: &str = "discogs-file";
    /// The batch's sequence number within its file (batches).
    pub const SEQ: &str = "discogs-seq";
    /// The envelope's schema version ([`discogs_model::wire::SCHEMA_VERSION`]).
    pub const SCHEMA: &str = "discogs-schema";
    /// Records in a batch, or in the whole file for `file_complete`.
    pub const RECORDS: &str = "discogs-records";
    /// Why a consumer dead-lettered the message (on copies in a dead-letter queue).
    pub const DEAD_LETTER_REASON: &str = "discogs-dead-letter-reason";
    /// The queue the dead-lettered message came from.
    pub const DEAD_LETTER_QUEUE: &str = "discogs-dead-letter-queue";
    /// How many times the broker had delivered the message before it was dead-lettered.
    pub const DEAD_LETTER_DELIVERIES: &str = "discogs-dead-letter-deliveries";
    /// Set by quorum queues on a redelivered message: how many times it was given back.
    pub const DELIVERY_COUNT: &str = "x-delivery-count";
}

/// The URL with the password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How long opening a connection (TCP, then the AMQP handshake) may take: a broker that
/// accepts connections while it is still booting must not hang the caller.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long closing a connection may take before it is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection on the tokio runtime.
pub(crate) async fn connect(url: &str, name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default()
        .with_connection_name(LongString::from(name.as_bytes().to_vec()));
    let fail = |source| BusError::Connect {
        url: redact(url),
        source,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
        Ok(connected) => connected.map_err(fail),
        Err(_) => Err(fail(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no AMQP handshake within {CONNECT_TIMEOUT:?}"),
            )
            .into(),
        )),
    }
}

/// How long opening a session (connection, channels, declarations, subscriptions) may
/// take: past it, the attempt counts as failed and the caller reconnects with backoff. A
/// connection lost in the middle of these RPCs, or a broker that accepts connections while
/// it is still booting, must not hold a publisher or consumer forever.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `open` (opening a session) within [`SESSION_TIMEOUT`]; running out of time is a
/// retriable [`BusError::Amqp`] (an I/O time-out) described by `what`.
pub(crate) async fn within_session_timeout<T>(
    what: &str,
    open: impl std::future::Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(SESSION_TIMEOUT, open).await {
        Ok(result) => result,
        Err(_) => Err(BusError::Amqp {
            context: what.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not done within {SESSION_TIMEOUT:?}"),
            )
            .into(),
        }),
    }
}

/// Closes a connection if it is still open, without waiting long for the broker.
pub(crate) async fn close_quietly(connection: &Connection, code: u16, text: &str) {
    if connection.status().connected() {
        let closing = connection.close(code, text.into());
        if !matches!(
            tokio::time::timeout(CLOSE_TIMEOUT, closing).await,
            Ok(Ok(()))
        ) {
            tracing::debug!("A connection did not close cleanly; dropping it.");
        }
    }
}

pub(crate) fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn int(n: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Headers and properties for a message: persistent, JSON, with the headers of
/// [`headers`] and a message id that is the same for every copy of a re-sent batch.
pub(crate) fn properties(message: &MessageInfo<'_>) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert(headers::TYPE.into(), long(message.ty.as_str()));
    if let Some(kind) = message.kind {
        h.insert(headers::KIND.into(), long(kind.plural()));
    }
    h.insert(headers::VERSION.into(), long(message.version));
    if let Some(file) = message.file {
        h.insert(headers::FILE.into(), long(file));
    }
    if let Some(seq) = message.seq {
        h.insert(headers::SEQ.into(), int(seq));
    }
    h.insert(headers::SCHEMA.into(), int(u64::from(SCHEMA_VERSION)));
    if let Some(records) = message.records {
        h.insert(headers::RECORDS.into(), int(records));
    }
    let id = match (message.file, message.seq) {
        (Some(file), Some(seq)) => format!("{}/{file}/{seq}", message.version),
        (Some(file), None) => format!("{}/{file}/{}", message.version, message.ty),
        _ => format!("{}/{}", message.version, message.ty),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(CONTENT_TYPE.into())
        .with_content_encoding("UTF-8".into())
        .with_app_id("discogsography".into())
        .with_timestamp(now)
        .with_headers(h);
    if let Ok(id) = ShortString::try_new(id) {
        props = props.with_message_id(id);
    }
    props
}

/// What the headers say about a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageInfo<'a> {
    pub(crate) ty: MessageType,
    pub(crate) kind: Option<RecordKind>,
    pub(crate) version: &'a str,
    pub(crate) file: Option<&'a str>,
    pub(crate) seq: Option<u64>,
    pub(crate) records: Option<u64>,
}

impl<'a> MessageInfo<'a> {
    pub(crate) fn of(message: &'a Message<'_>) -> Self {
        match message {
            Message::Batch(b) => Self {
                ty: MessageType::Batch,
                kind: Some(b.kind),
                version: &b.version,
                file: Some(&b.file),
                seq: Some(b.seq),
                records: Some(b.records.len() as u64),
            },
            Message::Removed(r) => Self {
                ty: MessageType::Removed,
                kind: Some(r.kind),
                version: &r.version,
                file: Some(&r.file),
                seq: Some(r.seq),
                records: Some(r.ids.len() as u64),
            },
            Message::FileComplete(f) => Self {
                ty: MessageType::FileComplete,
                kind: Some(f.kind),
                version: &f.version,
                file: Some(&f.file),
                seq: None,
                records: Some(f.records),
            },
            Message::ExtractionComplete(e) => Self {
                ty: MessageType::ExtractionComplete,
                kind: None,
                version: &e.version,
                file: None,
                seq: None,
                records: Some(e.record_counts.total()),
            },
        }
    }
}

/// An integer header, whatever integer type the broker or publisher chose.
pub(crate) fn header_u64(table: Option<&FieldTable>, key: &str) -> Option<u64> {
    match table?.inner().get(key)? {
        AMQPValue::ShortShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

/// A string header.
pub(crate) fn header_str<'t>(table: Option<&'t FieldTable>, key: &str) -> Option<&'t str> {
    match table?.inner().get(key)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts() {
        assert_eq!(
            redact("amqp://u:secret@127.0.0.1:5672/%2f"),
            "amqp://u:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn headers_of_a_batch() {
        let info = MessageInfo {
            ty: MessageType::Batch,
            kind: Some(RecordKind::Release),
            version: "20260101",
            file: Some("discogs_20260101_releases.xml.gz"),
            seq: Some(3),
            records: Some(100),
        };
        let props = properties(&info);
        let h = props.headers().as_ref();
        assert_eq!(header_str(h, headers::TYPE), Some("batch"));
        assert_eq!(header_str(h, headers::KIND), Some("releases"));
        assert_eq!(header_u64(h, headers::SEQ), Some(3));
        assert_eq!(header_u64(h, headers::RECORDS), Some(100));
        assert_eq!(header_u64(h, headers::SCHEMA), Some(1));
        assert_eq!(
            props.message_id().as_ref().map(ShortString::as_str),
            Some("20260101/discogs_20260101_releases.xml.gz/3")
        );
        assert_eq!(*props.delivery_mode(), Some(2));
    }
}
