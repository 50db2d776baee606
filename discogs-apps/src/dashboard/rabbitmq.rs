//! Reading RabbitMQ's management API: the pipeline's queues and their dead-letter queues.
//!
//! `GET /api/queues/{vhost}?columns=...` lists every queue; those named `{prefix}-...` are
//! the pipeline's, `{prefix}-{consumer}-{kind}` for consumer queues and `{queue}.dlq` for
//! their dead-letter queues. The broker refreshes these figures every
//! `collect_statistics_interval` (5 s by default); a queue younger than that has no figures
//! yet, and shows none rather than zeros.
//!
//! Why messages were dead-lettered is in their headers, which only reading the messages
//! shows. The management API's "get" with `ack_requeue_true` puts them back, but on a
//! quorum queue each return counts as a delivery, and a delivery limit (RabbitMQ 4's
//! default of 20, or an explicit one) would eventually drop them. So the collector reads
//! a few messages of a dead-letter queue only when that cannot happen (a classic queue, or
//! a quorum queue without a delivery limit on RabbitMQ 3, or with `x-delivery-limit` < 0),
//! only when its depth changed, and at most every [`PEEK_INTERVAL`]; otherwise the panel
//! says why it shows no reasons.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::collect::Reader;
use super::http::{BasicAuth, HttpClient};
use super::snapshot::{DeadLetter, DeadLetterQueue, QueueStats, RabbitMq};

/// Shortest time between two readings of the same dead-letter queue's messages.
pub const PEEK_INTERVAL: Duration = Duration::from_secs(10);

/// Messages read from a dead-letter queue for the panel.
const PEEK_COUNT: u32 = 5;

const COLUMNS: &str = "name,type,state,messages,messages_ready,messages_unacknowledged,consumers,\
message_stats.publish_details.rate,message_stats.deliver_get_details.rate,\
message_stats.ack_details.rate,arguments,effective_policy_definition";

/// Where the management API is and what to read there.
#[derive(Debug, Clone)]
pub struct RabbitTarget {
    /// `http://host:15672`, no trailing slash.
    pub base_url: String,
    /// The credentials.
    pub auth: BasicAuth,
    /// The virtual host, percent-encoded for a URL path (`%2F` for `/`).
    pub vhost: String,
    /// The names' prefix (`discogsography`).
    pub prefix: String,
    /// Whether dead-letter reasons may be read (see the module documentation).
    pub peek_dead_letters: bool,
}

#[derive(Debug)]
struct Peeked {
    depth: u64,
    at: Instant,
    samples: Vec<DeadLetter>,
}

/// The RabbitMQ source: remembers the broker's version and the last samples read.
#[derive(Debug)]
pub(crate) struct RabbitSource {
    target: RabbitTarget,
    client: HttpClient,
    version: Option<String>,
    peeked: HashMap<String, Peeked>,
}

impl RabbitSource {
    pub(crate) fn new(target: RabbitTarget, client: HttpClient) -> Self {
        Self {
            target,
            client,
            version: None,
            peeked: HashMap::new(),
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let reply = self.client.get(url, Some(&self.target.auth)).await?;
        if reply.status != 200 {
            return Err(format!(
                "management API: HTTP {} for {}",
                reply.status,
                url.split('?').next().unwrap_or(url)
            ));
        }
        serde_json::from_slice(&reply.body)
            .map_err(|e| format!("management API: the answer is not JSON: {e}"))
    }

    /// The samples of a dead-letter queue: read again when allowed and worth it, else the
    /// last ones read.
    async fn samples(
        &mut self,
        queue: &Value,
        name: &str,
        depth: u64,
    ) -> (Vec<DeadLetter>, Option<String>) {
        if depth == 0 {
            self.peeked.remove(name);
            return (Vec::new(), None);
        }
        if !self.target.peek_dead_letters {
            return (
                Vec::new(),
                Some("reading dead-letter reasons is turned off (--dlq-peek false)".into()),
            );
        }
        if let Some(why) = unsafe_to_peek(queue, self.version.as_deref()) {
            return (Vec::new(), Some(why));
        }
        let fresh = self
            .peeked
            .get(name)
            .is_some_and(|p| p.depth == depth || p.at.elapsed() < PEEK_INTERVAL);
        if !fresh {
            let url = format!(
                "{}/api/queues/{}/{}/get",
                self.target.base_url,
                self.target.vhost,
                encode_segment(name)
            );
            let body = json!({"count": PEEK_COUNT, "ackmode": "ack_requeue_true",
                              "encoding": "auto", "truncate": 512});
            match self
                .client
                .post_json(&url, Some(&self.target.auth), &body)
                .await
            {
                Ok(reply) if reply.status == 200 => {
                    let messages: Vec<Value> =
                        serde_json::from_slice(&reply.body).unwrap_or_default();
                    self.peeked.insert(
                        name.to_owned(),
                        Peeked {
                            depth,
                            at: Instant::now(),
                            samples: messages.iter().map(dead_letter).collect(),
                        },
                    );
                }
                Ok(reply) => {
                    return (
                        Vec::new(),
                        Some(format!("reading its messages: HTTP {}", reply.status)),
                    )
                }
                Err(e) => return (Vec::new(), Some(format!("reading its messages: {e}"))),
            }
        }
        let samples = self
            .peeked
            .get(name)
            .map(|p| p.samples.clone())
            .unwrap_or_default();
        (samples, None)
    }
}

impl Reader for RabbitSource {
    type Data = RabbitMq;

    /// One reading.
    async fn read(&mut self) -> Result<RabbitMq, String> {
        if self.version.is_none() {
            let overview = self
                .get_json(&format!(
                    "{}/api/overview?columns=rabbitmq_version",
                    self.target.base_url
                ))
                .await?;
            self.version = overview
                .get("rabbitmq_version")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        let url = format!(
            "{}/api/queues/{}?columns={COLUMNS}",
            self.target.base_url, self.target.vhost
        );
        let listing = self.get_json(&url).await?;
        let Value::Array(all) = listing else {
            return Err("the management API's queue list is not an array".into());
        };
        let own = format!("{}-", self.target.prefix);
        let mine: Vec<&Value> = all
            .iter()
            .filter(|q| name_of(q).starts_with(&own))
            .collect();

        let mut queues: Vec<QueueStats> = mine
            .iter()
            .filter(|q| !name_of(q).ends_with(".dlq"))
            .map(|q| queue_stats(q, &self.target.prefix))
            .collect();
        let mut dead_letters = Vec::new();
        for q in mine.iter().filter(|q| name_of(q).ends_with(".dlq")) {
            let name = name_of(q).to_owned();
            let source = name.trim_end_matches(".dlq").to_owned();
            let depth = q.get("messages").and_then(Value::as_u64);
            if let Some(parent) = queues.iter_mut().find(|p| p.name == source) {
                parent.dead_letters = depth;
            }
            let (samples, note) = self.samples(q, &name, depth.unwrap_or(0)).await;
            dead_letters.push(DeadLetterQueue {
                name,
                source,
                messages: depth.unwrap_or(0),
                samples,
                note,
            });
        }
        self.peeked
            .retain(|name, _| dead_letters.iter().any(|d| &d.name == name));
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        dead_letters.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(RabbitMq {
            version: self.version.clone(),
            total_messages: queues.iter().filter_map(|q| q.messages).sum(),
            total_dead_letters: dead_letters.iter().map(|d| d.messages).sum(),
            queues,
            dead_letters,
        })
    }
}

fn name_of(q: &Value) -> &str {
    q.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// A queue's figures; `{prefix}-{consumer}-{kind}` gives consumer and kind.
fn queue_stats(q: &Value, prefix: &str) -> QueueStats {
    let name = name_of(q).to_owned();
    let (consumer, kind) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.rsplit_once('-'))
        .map_or((None, None), |(c, k)| {
            (Some(c.to_owned()), Some(k.to_owned()))
        });
    let rate = |key: &str| {
        q.get("message_stats")
            .and_then(|s| s.get(key))
            .and_then(|d| d.get("rate"))
            .and_then(Value::as_f64)
    };
    let stats_known = q.get("messages").is_some();
    QueueStats {
        consumer,
        kind,
        queue_type: q.get("type").and_then(Value::as_str).map(str::to_owned),
        state: q.get("state").and_then(Value::as_str).map(str::to_owned),
        messages: q.get("messages").and_then(Value::as_u64),
        ready: q.get("messages_ready").and_then(Value::as_u64),
        unacked: q.get("messages_unacknowledged").and_then(Value::as_u64),
        consumers: q.get("consumers").and_then(Value::as_u64),
        // No `message_stats` on a queue with figures: nothing moved through it yet.
        publish_rate: rate("publish_details").or(stats_known.then_some(0.0)),
        deliver_rate: rate("deliver_get_details").or(stats_known.then_some(0.0)),
        ack_rate: rate("ack_details").or(stats_known.then_some(0.0)),
        dead_letters: None,
        name,
    }
}

/// Why reading a dead-letter queue's messages could lose them, or `None` when it cannot.
fn unsafe_to_peek(queue: &Value, version: Option<&str>) -> Option<String> {
    let kind = queue
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("classic");
    match kind {
        "classic" => return None,
        "quorum" => {}
        other => return Some(format!("a {other} queue's messages cannot be read back")),
    }
    let limit = queue
        .get("arguments")
        .and_then(|a| a.get("x-delivery-limit"))
        .or_else(|| {
            queue
                .get("effective_policy_definition")
                .and_then(|p| p.get("delivery-limit"))
        })
        .and_then(Value::as_i64);
    let major = version
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match (limit, major) {
        (Some(n), _) if n < 0 => None,
        (Some(n), _) => Some(format!(
            "reasons not read: each read counts against its delivery limit ({n})"
        )),
        (None, Some(m)) if m < 4 => None,
        (None, _) => Some(
            "reasons not read: RabbitMQ 4 quorum queues have a default delivery limit; \
             set x-delivery-limit = -1 on dead-letter queues to allow it"
                .into(),
        ),
    }
}

/// One message of a dead-letter queue, from the management API's "get".
fn dead_letter(m: &Value) -> DeadLetter {
    let headers = m.get("properties").and_then(|p| p.get("headers"));
    let header = |key: &str| headers.and_then(|h| h.get(key));
    let header_text = |key: &str| header(key).and_then(Value::as_str).map(str::to_owned);
    let first_death = header("x-death")
        .and_then(Value::as_array)
        .and_then(|deaths| deaths.first());
    let reason = header_text("discogs-dead-letter-reason")
        .or_else(|| {
            first_death
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| header_text("x-first-death-reason"));
    let from_queue = header_text("discogs-dead-letter-queue")
        .or_else(|| {
            first_death
                .and_then(|d| d.get("queue"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| header_text("x-first-death-queue"));
    let deliveries = header("discogs-dead-letter-deliveries")
        .and_then(Value::as_u64)
        .or_else(|| {
            first_death
                .and_then(|d| d.get("count"))
                .and_then(Value::as_u64)
        });
    let payload = m.get("payload").and_then(Value::as_str).unwrap_or_default();
    let encoding = m.get("payload_encoding").and_then(Value::as_str);
    let preview = if encoding == Some("base64") {
        format!(
            "({} bytes, binary)",
            m.get("payload_bytes").and_then(Value::as_u64).unwrap_or(0)
        )
    } else {
        payload.chars().take(200).collect()
    };
    DeadLetter {
        reason,
        from_queue,
        file: header_text("discogs-file"),
        seq: header("discogs-seq").and_then(Value::as_u64),
        deliveries,
        preview,
    }
}

/// Percent-encodes a queue name for a URL path segment.
fn encode_segment(s: &str) -> String {
    crate::config::url_encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_missing_figures() {
        let q = json!({"name": "discogsography-graphinator-releases", "type": "quorum",
                       "messages": 7, "messages_ready": 5, "messages_unacknowledged": 2,
                       "consumers": 1, "message_stats": {"publish_details": {"rate": 3.5}}});
        let s = queue_stats(&q, "discogsography");
        assert_eq!(
            (s.consumer.as_deref(), s.kind.as_deref()),
            (Some("graphinator"), Some("releases"))
        );
        assert_eq!(
            (s.messages, s.ready, s.unacked, s.consumers),
            (Some(7), Some(5), Some(2), Some(1))
        );
        assert_eq!((s.publish_rate, s.ack_rate), (Some(3.5), Some(0.0)));

        let young = queue_stats(&json!({"name": "p-a-b-labels"}), "p");
        assert_eq!(young.consumer.as_deref(), Some("a-b"));
        assert_eq!(
            (young.messages, young.publish_rate),
            (None, None),
            "no figures yet is not zero"
        );
    }

    #[test]
    fn peeking_only_where_nothing_can_be_lost() {
        let quorum = json!({"type": "quorum", "arguments": {"x-queue-type": "quorum"}});
        assert!(unsafe_to_peek(&quorum, Some("3.10.8")).is_none());
        assert!(unsafe_to_peek(&quorum, Some("4.1.0")).is_some());
        assert!(unsafe_to_peek(&quorum, None).is_some());
        let limited = json!({"type": "quorum", "arguments": {"x-delivery-limit": 5}});
        assert!(unsafe_to_peek(&limited, Some("3.13.0")).is_some());
        let by_policy =
            json!({"type": "quorum", "effective_policy_definition": {"delivery-limit": 3}});
        assert!(unsafe_to_peek(&by_policy, Some("3.13.0")).is_some());
        let unlimited = json!({"type": "quorum", "arguments": {"x-delivery-limit": -1}});
        assert!(unsafe_to_peek(&unlimited, Some("4.1.0")).is_none());
        assert!(unsafe_to_peek(&json!({"type": "classic"}), Some("4.1.0")).is_none());
        assert!(unsafe_to_peek(&json!({"type": "stream"}), Some("3.13.0")).is_some());
    }

    #[test]
    fn reasons_from_headers() {
        let m = json!({"payload": "{\"kind\":\"releases\"}", "payload_encoding": "string",
            "properties": {"headers": {
                "discogs-file": "discogs_20260101_releases.xml.gz", "discogs-seq": 41,
                "x-death": [{"reason": "delivery_limit", "queue": "p-tableinator-releases", "count": 1}]}}});
        let d = dead_letter(&m);
        assert_eq!(d.reason.as_deref(), Some("delivery_limit"));
        assert_eq!(d.from_queue.as_deref(), Some("p-tableinator-releases"));
        assert_eq!(d.seq, Some(41));
        assert_eq!(d.preview, "{\"kind\":\"releases\"}");
        let own = json!({"properties": {"headers": {
            "discogs-dead-letter-reason": "invalid JSON at line 1",
            "discogs-dead-letter-deliveries": 1}}});
        let d = dead_letter(&own);
        assert_eq!(d.reason.as_deref(), Some("invalid JSON at line 1"));
        assert_eq!(d.deliveries, Some(1));
        assert_eq!(encode_segment("a b/c.dlq"), "a%20b%2Fc.dlq");
    }
}
