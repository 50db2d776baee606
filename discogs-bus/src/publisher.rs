//! [`AmqpPublisher`]: batches, persistent `mandatory` messages, a window of pipelined
//! confirms, reconnection that sends again everything unconfirmed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use discogs_model::wire::{
    BatchEncoder, EncodedRecord, ExtractionComplete, FileComplete, Message, MessageType, Removed,
    WireError,
};
use discogs_model::{RecordKind, SinkRecord};
use futures_util::FutureExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, PublisherConfirm};

use crate::amqp::{close_quietly, connect, properties, within_session_timeout, MessageInfo};
use crate::error::{lapin_is_retriable, needs_reconnect};
use crate::publish::{complete_message, FileProgress, FileRef, Publisher, Resume};
use crate::topology::{declare_consumer, declare_exchanges};
use crate::{BusError, Compression, PublisherConfig, Topology};

/// Publishes to RabbitMQ (see [`Publisher`] for the protocol).
///
/// * Records of the open file are encoded straight into the body of the current batch
///   ([`BatchEncoder`]), which is closed at [`PublisherConfig::max_records`] records or
///   before it would pass [`PublisherConfig::max_bytes`].
/// * Each batch is one persistent, `mandatory` message on the kind's fanout exchange, with
///   the headers of [`crate::headers`] and the message id `{version}/{file}/{seq}`.
/// * Up to [`PublisherConfig::confirm_window`] messages are in flight; their confirms are
///   collected in order, so the confirmed batches of a file are always a prefix
///   ([`FileProgress::confirmed_batches`]).
/// * A nack or a returned message is an error for the caller; the message stays queued
///   and the next call sends it again.
/// * A lost connection (or a confirm that does not come within
///   [`PublisherConfig::confirm_timeout`]) is repaired with a new connection, with backoff
///   ([`PublisherConfig::reconnect`]); every unconfirmed message is then sent again. A
///   batch may so reach the queues twice, with the same id: at-least-once.
///
/// No I/O happens before the first message; the connection is opened, and the exchanges
/// (and the queues of [`PublisherConfig::consumers`]) declared, on first use or by
/// [`AmqpPublisher::connect`].
pub struct AmqpPublisher {
    url: String,
    topology: Topology,
    config: PublisherConfig,
    session: Option<Session>,
    encoder: BatchEncoder,
    /// Whether `encoder` holds a started batch of the open file.
    encoding: bool,
    open: Option<OpenFile>,
    outbox: VecDeque<Outgoing>,
    in_flight: usize,
    connections: u64,
    /// Reconnections since the last confirm, and when the first of them happened: a
    /// connection that keeps breaking before anything is confirmed is retried with
    /// backoff, and given up after the backoff's budget.
    stalled: Option<(u32, Instant)>,
}

struct Session {
    connection: Connection,
    channel: Channel,
}

struct OpenFile {
    progress: FileProgress,
    /// `file_complete` was queued (so a repeated `end_file` does not queue it twice).
    completing: bool,
}

/// A message handed to the connection whose frames may still be on their way out.
type Sending = Pin<Box<dyn Future<Output = lapin::Result<PublisherConfirm>> + Send>>;

enum State {
    /// Waiting to be sent (first time, or again after a reconnection or a nack).
    Unsent,
    /// Handed to the connection, in order; not yet written to the socket.
    Sending(Sending),
    /// Written; waiting for the broker's confirm.
    Sent(PublisherConfirm),
    Confirmed,
}

impl State {
    fn in_flight(&self) -> bool {
        matches!(self, State::Sending(_) | State::Sent(_))
    }
}

struct Outgoing {
    exchange: ShortString,
    body: Arc<Vec<u8>>,
    properties: BasicProperties,
    what: String,
    /// `(seq, records)` for a batch of the open file.
    batch: Option<(u64, u64)>,
    state: State,
}

impl std::fmt::Debug for AmqpPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpPublisher")
            .field("url", &crate::amqp::redact(&self.url))
            .field("topology", &self.topology)
            .field("connected", &self.session.is_some())
            .field("progress", &self.progress())
            .field("outbox", &self.outbox.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl AmqpPublisher {
    /// A publisher to the broker at `url` (e.g. `AMQP_CONNECTION`). Does no I/O.
    ///
    /// # Errors
    ///
    /// [`BusError::Usage`] for an invalid topology or configuration.
    pub fn new(
        url: impl Into<String>,
        topology: Topology,
        config: PublisherConfig,
    ) -> Result<Self, BusError> {
        topology.validate(None)?;
        for consumer in &config.consumers {
            topology.validate(Some(consumer))?;
        }
        config.validate()?;
        Ok(Self {
            url: url.into(),
            topology,
            config,
            session: None,
            encoder: BatchEncoder::new(),
            encoding: false,
            open: None,
            outbox: VecDeque::new(),
            in_flight: 0,
            connections: 0,
            stalled: None,
        })
    }

    /// Connects now (with the reconnection backoff) and declares the topology, rather than
    /// on the first message: a way to fail early on a wrong address or credentials.
    ///
    /// # Errors
    ///
    /// When the broker cannot be reached within the backoff's budget, refuses the login,
    /// or refuses the topology.
    pub async fn connect(&mut self) -> Result<(), BusError> {
        if self.session.is_none() {
            self.reconnect().await?;
        }
        Ok(())
    }

    /// The names in use.
    #[must_use]
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// How many times the publisher had to connect again after its first connection (a
    /// lost connection, a missing confirm): for metrics.
    #[must_use]
    pub fn reconnects(&self) -> u64 {
        self.connections.saturating_sub(1)
    }

    /// Messages sent and not yet confirmed, plus those waiting to be sent.
    #[must_use]
    pub fn unconfirmed(&self) -> usize {
        self.outbox.len()
    }

    /// Flushes, then closes the connection.
    ///
    /// # Errors
    ///
    /// As [`Publisher::flush`]; the connection is closed in any case.
    pub async fn close(mut self) -> Result<(), BusError> {
        let flushed = self.flush().await;
        if let Some(session) = self.session.take() {
            close_quietly(&session.connection, 200, "publisher closed").await;
        }
        flushed
    }

    /// A new connection and confirming channel, with the topology declared. Takes the
    /// fields it needs rather than `&self`, which is not `Sync` (it holds futures).
    async fn open_session(
        url: &str,
        topology: &Topology,
        config: &PublisherConfig,
    ) -> Result<Session, BusError> {
        let connection = connect(url, &config.connection_name).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(BusError::amqp("opening a channel"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(BusError::amqp("enabling publisher confirms"))?;
        declare_exchanges(&channel, topology, &RecordKind::ALL).await?;
        for consumer in &config.consumers {
            declare_consumer(&channel, topology, consumer, &RecordKind::ALL).await?;
        }
        Ok(Session {
            connection,
            channel,
        })
    }

    /// Drops the current connection, marks everything in flight as unsent, and connects
    /// again with backoff.
    async fn reconnect(&mut self) -> Result<(), BusError> {
        if let Some(old) = self.session.take() {
            close_quietly(&old.connection, 320, "publisher reconnecting").await;
        }
        self.forget_in_flight();
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            let opening = Self::open_session(&self.url, &self.topology, &self.config);
            match within_session_timeout("opening the publisher's session", opening).await {
                Ok(session) => {
                    if attempt > 0 {
                        tracing::info!(
                            attempts = attempt + 1,
                            resend = self.outbox.len(),
                            "Publisher reconnected to RabbitMQ."
                        );
                    }
                    self.session = Some(session);
                    self.connections += 1;
                    return Ok(());
                }
                Err(e) if !e.is_retriable() => return Err(e),
                Err(e) => {
                    attempt += 1;
                    if self.config.reconnect.exhausted(start.elapsed()) {
                        return Err(BusError::GaveUp {
                            attempts: attempt,
                            elapsed: start.elapsed(),
                            last: Box::new(e),
                        });
                    }
                    let delay = self.config.reconnect.delay(attempt - 1);
                    tracing::warn!(error = %e, attempt, retry_in = ?delay, "Publisher cannot reach RabbitMQ; retrying.");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Closes the current batch into the outbox (no I/O).
    fn close_batch(&mut self) {
        if !self.encoding || self.encoder.is_empty() {
            return;
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let records = self.encoder.records() as u64;
        let json = self.encoder.finish();
        let (body, encoding) = match self.config.compression {
            Compression::Lz4 => (
                lz4_flex::block::compress_prepend_size(&json),
                Some(Compression::LZ4_ENCODING),
            ),
            Compression::None => (json, None),
        };
        self.encoding = false;
        let file = &open.progress.file;
        let seq = open.progress.batches;
        open.progress.batches += 1;
        let info = MessageInfo {
            ty: MessageType::Batch,
            kind: Some(file.kind),
            version: &file.version,
            file: Some(&file.file),
            seq: Some(seq),
            records: Some(records),
        };
        self.outbox.push_back(Outgoing {
            exchange: self.topology.exchange(file.kind).into(),
            body: Arc::new(body),
            properties: match encoding {
                Some(e) => properties(&info).with_content_encoding(e.into()),
                None => properties(&info),
            },
            what: format!("batch {}/{}#{seq}", file.version, file.file),
            batch: Some((seq, records)),
            state: State::Unsent,
        });
    }

    /// Queues a control message to the exchange of `kind` (no I/O).
    fn queue_control(&mut self, kind: RecordKind, message: &Message<'_>) -> Result<(), BusError> {
        let info = MessageInfo::of(message);
        self.outbox.push_back(Outgoing {
            exchange: self.topology.exchange(kind).into(),
            body: Arc::new(message.to_json()?),
            properties: properties(&info),
            what: format!("{} of {}", info.ty, info.version),
            batch: None,
            state: State::Unsent,
        });
        Ok(())
    }

    /// Pops confirmed messages off the front, advancing the open file's confirmed prefix.
    fn pop_confirmed(&mut self) {
        while matches!(self.outbox.front(), Some(o) if matches!(o.state, State::Confirmed)) {
            let Some(out) = self.outbox.pop_front() else {
                break;
            };
            if let (Some((seq, records)), Some(open)) = (out.batch, self.open.as_mut()) {
                debug_assert_eq!(seq, open.progress.confirmed_batches);
                open.progress.confirmed_batches = seq + 1;
                open.progress.confirmed_records += records;
            }
        }
    }

    /// Records the broker's answer for message `i`.
    fn settle(&mut self, i: usize, answer: lapin::Result<Confirmation>) -> Result<(), BusError> {
        let out = &mut self.outbox[i];
        self.in_flight -= 1;
        match answer {
            Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => {
                out.state = State::Confirmed;
                self.stalled = None;
                Ok(())
            }
            Ok(Confirmation::Ack(Some(returned))) => {
                out.state = State::Unsent;
                Err(BusError::Unroutable {
                    exchange: out.exchange.to_string(),
                    what: out.what.clone(),
                    reply: returned.reply_text.to_string(),
                })
            }
            Ok(Confirmation::Nack(_)) => {
                out.state = State::Unsent;
                Err(BusError::Nacked {
                    exchange: out.exchange.to_string(),
                    what: out.what.clone(),
                })
            }
            Err(source) => {
                out.state = State::Unsent;
                Err(BusError::Amqp {
                    context: format!("waiting for the confirm of {}", out.what),
                    source,
                })
            }
        }
    }

    /// Everything in flight is to be sent again (the connection is gone or suspect).
    fn forget_in_flight(&mut self) {
        for out in &mut self.outbox {
            if out.state.in_flight() {
                out.state = State::Unsent;
            }
        }
        self.in_flight = 0;
    }

    /// The frames of message `i` could not be written.
    fn not_written(&mut self, i: usize, source: lapin::Error) -> BusError {
        self.outbox[i].state = State::Unsent;
        self.in_flight -= 1;
        BusError::Amqp {
            context: format!("publishing {}", self.outbox[i].what),
            source,
        }
    }

    /// Collects what has happened to the messages in flight, without waiting.
    fn reap(&mut self) -> Result<(), BusError> {
        for i in 0..self.outbox.len() {
            if let State::Sending(sending) = &mut self.outbox[i].state {
                match sending.now_or_never() {
                    Some(Ok(confirm)) => self.outbox[i].state = State::Sent(confirm),
                    Some(Err(source)) => return Err(self.not_written(i, source)),
                    // Frames go out in order: the later ones are not written either.
                    None => break,
                }
            }
            if let State::Sent(confirm) = &mut self.outbox[i].state {
                match confirm.now_or_never() {
                    Some(answer) => self.settle(i, answer)?,
                    // Confirms come mostly in order: stop at the first still pending.
                    None => break,
                }
            }
        }
        self.pop_confirmed();
        Ok(())
    }

    /// Waits for the oldest message in flight to be confirmed (or refused).
    async fn wait_oldest(&mut self) -> Result<(), BusError> {
        let Some(i) = self.outbox.iter().position(|o| o.state.in_flight()) else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + self.config.confirm_timeout;
        if let State::Sending(sending) = &mut self.outbox[i].state {
            match tokio::time::timeout_at(deadline, sending).await {
                Ok(Ok(confirm)) => self.outbox[i].state = State::Sent(confirm),
                Ok(Err(source)) => return Err(self.not_written(i, source)),
                Err(_) => return Err(self.timed_out(i)),
            }
        }
        if let State::Sent(confirm) = &mut self.outbox[i].state {
            match tokio::time::timeout_at(deadline, confirm).await {
                Ok(answer) => self.settle(i, answer)?,
                Err(_) => return Err(self.timed_out(i)),
            }
        }
        self.pop_confirmed();
        Ok(())
    }

    /// No confirm for message `i` in time: the connection is not to be trusted; start
    /// over on a new one next time, sending again everything unconfirmed.
    fn timed_out(&mut self, i: usize) -> BusError {
        let what = self.outbox[i].what.clone();
        self.session = None;
        self.forget_in_flight();
        BusError::ConfirmTimeout {
            what,
            timeout: self.config.confirm_timeout,
        }
    }

    /// Hands message `i` to the current connection (connecting first if needed). Does not
    /// wait for the frames to be written: the caller goes on encoding meanwhile.
    async fn send(&mut self, i: usize) -> Result<(), BusError> {
        if self.session.is_none() {
            self.reconnect().await?;
        }
        let Some(session) = self.session.as_ref() else {
            return Ok(());
        };
        let channel = session.channel.clone();
        let out = &mut self.outbox[i];
        let (exchange, body, props) = (
            out.exchange.clone(),
            out.body.clone(),
            out.properties.clone(),
        );
        let mut sending: Sending = Box::pin(async move {
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            channel
                .basic_publish(exchange, "".into(), options, &body, props)
                .await
        });
        self.in_flight += 1;
        // The first poll puts the frames in the connection's queue, so messages go out
        // in the order they were sent.
        match (&mut sending).now_or_never() {
            Some(Ok(confirm)) => self.outbox[i].state = State::Sent(confirm),
            Some(Err(source)) => return Err(self.not_written(i, source)),
            None => self.outbox[i].state = State::Sending(sending),
        }
        Ok(())
    }

    /// Sends what waits in the outbox as the window allows; with `all`, also waits until
    /// everything is confirmed. Repairs the connection when it breaks.
    async fn pump(&mut self, all: bool) -> Result<(), BusError> {
        loop {
            let step = self.pump_step(all).await;
            match step {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                Err(e) if needs_reconnect(&e) && !matches!(e, BusError::ConfirmTimeout { .. }) => {
                    tracing::warn!(error = %e, unconfirmed = self.outbox.len(), "Publisher lost its connection; reconnecting to send again what is unconfirmed.");
                    let (count, since) = self.stalled.unwrap_or((0, Instant::now()));
                    if count > 0 {
                        // Broke again before anything was confirmed: do not spin.
                        if self.config.reconnect.exhausted(since.elapsed()) {
                            return Err(BusError::GaveUp {
                                attempts: count,
                                elapsed: since.elapsed(),
                                last: Box::new(e),
                            });
                        }
                        tokio::time::sleep(self.config.reconnect.delay(count - 1)).await;
                    }
                    self.stalled = Some((count + 1, since));
                    self.reconnect().await?;
                }
                Err(e) => {
                    if let BusError::Amqp { source, .. } = &e {
                        if !lapin_is_retriable(source) {
                            // A channel error: the channel is closed; start over next time.
                            self.session = None;
                            self.forget_in_flight();
                        }
                    }
                    return Err(e);
                }
            }
        }
    }

    /// One step of [`Self::pump`]; `Ok(true)` when there is more to do.
    async fn pump_step(&mut self, all: bool) -> Result<bool, BusError> {
        self.reap()?;
        let unsent = self
            .outbox
            .iter()
            .position(|o| matches!(o.state, State::Unsent));
        if let Some(i) = unsent {
            if self.in_flight < self.config.confirm_window {
                self.send(i).await?;
                return Ok(true);
            }
        }
        if self.in_flight > 0 && (unsent.is_some() || all) {
            self.wait_oldest().await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Starts the encoder on the open file's next batch.
    fn start_batch(&mut self) {
        if let Some(open) = self.open.as_ref() {
            let file = &open.progress.file;
            self.encoder
                .start(file.kind, &file.version, &file.file, open.progress.batches);
            self.encoding = true;
        }
    }

    fn open_file(&mut self) -> Result<&mut OpenFile, BusError> {
        self.open
            .as_mut()
            .ok_or_else(|| BusError::Usage("no file is open: call begin_file first".into()))
    }
}

/// A record handed to [`AmqpPublisher::accept`]: typed, or encoded beforehand.
#[derive(Clone, Copy)]
enum Staged<'r, 'a> {
    Record(&'r SinkRecord<'a>),
    Encoded(&'r EncodedRecord),
}

impl Staged<'_, '_> {
    fn kind_and_id(self) -> (RecordKind, u64) {
        match self {
            Self::Record(r) => (r.record.kind(), r.record.id()),
            Self::Encoded(r) => (r.kind(), r.id()),
        }
    }

    fn stage(self, encoder: &mut BatchEncoder) -> Result<usize, WireError> {
        match self {
            Self::Record(r) => encoder.stage(r),
            Self::Encoded(r) => encoder.stage_encoded(r),
        }
    }
}

impl AmqpPublisher {
    /// Adds one record to the current batch (see [`Publisher::publish`]).
    async fn accept(&mut self, record: Staged<'_, '_>) -> Result<(), BusError> {
        let open = self.open_file()?;
        if open.completing {
            return Err(BusError::Usage(format!(
                "file {} is being completed: no more records",
                open.progress.file.file
            )));
        }
        let kind = open.progress.file.kind;
        let (record_kind, id) = record.kind_and_id();
        if record_kind != kind {
            return Err(WireError::KindMismatch {
                batch: kind,
                record: record_kind,
                id,
            }
            .into());
        }
        if !self.encoding {
            self.start_batch();
        }
        record.stage(&mut self.encoder)?;
        if !self.encoder.is_empty() && self.encoder.len_with_staged() > self.config.max_bytes {
            self.close_batch();
            self.start_batch();
        }
        if self.outbox.iter().any(|o| matches!(o.state, State::Unsent)) {
            // Not accepted yet: on error the caller publishes the same record again.
            self.pump(false).await?;
        }
        self.encoder.commit();
        self.open_file()?.progress.accepted_records += 1;
        if self.encoder.records() >= self.config.max_records {
            self.close_batch();
        }
        Ok(())
    }
}

impl Publisher for AmqpPublisher {
    fn begin_file(&mut self, file: FileRef, resume: Resume) -> Result<(), BusError> {
        if let Some(open) = &self.open {
            return Err(BusError::Usage(format!(
                "file {} is still open: end_file before beginning {}",
                open.progress.file.file, file.file
            )));
        }
        if ShortString::try_new(format!("{}/{}/{}", file.version, file.file, u64::MAX)).is_err() {
            return Err(BusError::Usage(format!(
                "version and file name {:?} are too long for AMQP headers",
                file.file
            )));
        }
        self.open = Some(OpenFile {
            progress: FileProgress::starting(file, resume),
            completing: false,
        });
        self.encoding = false;
        Ok(())
    }

    async fn publish(&mut self, record: &SinkRecord<'_>) -> Result<(), BusError> {
        self.accept(Staged::Record(record)).await
    }

    async fn publish_encoded(&mut self, record: &EncodedRecord) -> Result<(), BusError> {
        self.accept(Staged::Encoded(record)).await
    }

    async fn end_file(&mut self) -> Result<FileComplete<'static>, BusError> {
        if !self.open_file()?.completing {
            self.close_batch();
            // Every batch confirmed before file_complete goes out, so that it never
            // overtakes a batch that has to be sent again.
            self.pump(true).await?;
            let open = self.open_file()?;
            open.completing = true;
            let complete = complete_message(&open.progress);
            self.queue_control(complete.kind, &Message::FileComplete(complete))?;
        }
        self.pump(true).await?;
        let open = self.open_file()?;
        let complete = complete_message(&open.progress);
        self.open = None;
        Ok(complete)
    }

    async fn removed(&mut self, ids: &[u64]) -> Result<(), BusError> {
        let open = self.open_file()?;
        if open.completing {
            return Err(BusError::Usage(format!(
                "file {} is being completed: no more removed ids",
                open.progress.file.file
            )));
        }
        let file = open.progress.file.clone();
        self.close_batch();
        for chunk in Removed::chunks(file.kind, &file.version, &file.file, ids) {
            self.queue_control(file.kind, &Message::Removed(chunk))?;
        }
        self.pump(true).await?;
        self.open_file()?.progress.removed += ids.len() as u64;
        Ok(())
    }

    async fn extraction_complete(
        &mut self,
        message: &ExtractionComplete<'_>,
    ) -> Result<(), BusError> {
        self.close_batch();
        let message = Message::ExtractionComplete(message.clone());
        for kind in RecordKind::ALL {
            self.queue_control(kind, &message)?;
        }
        self.pump(true).await
    }

    async fn flush(&mut self) -> Result<(), BusError> {
        self.close_batch();
        self.pump(true).await
    }

    fn progress(&self) -> Option<&FileProgress> {
        self.open.as_ref().map(|o| &o.progress)
    }
}
