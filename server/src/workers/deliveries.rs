//! Sends queued webhook deliveries, signed in the Standard Webhooks form: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA-256 of
//! "id.timestamp.body">`. A 2xx answer succeeds; anything else is retried with exponential
//! backoff until the attempts run out. Every attempt is recorded. A delivery whose instance
//! stopped mid-attempt is sent again by whichever instance claims it once its lease runs out
//! (receivers de-duplicate by `webhook-id`); the interrupted attempt left no record. With
//! traces on, each attempt is a span of the trace that queued the delivery and sends its
//! `traceparent`.

use std::{sync::Arc, time::Duration};

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::Utc;
use hmac::{Hmac, Mac};
use opentelemetry::{trace::SpanKind, KeyValue};
use sea_orm::{sea_query::Expr, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::Sha256;
use tokio::sync::Notify;

use super::drain;
use crate::db::queue::{Lease, DELIVERIES};
use crate::{
    db::{
        columns::JsonText,
        entities::{webhook, webhook_delivery as delivery},
        records::StoredAttempt,
    },
    net_guard,
    secrets_at_rest::{places, Keyring},
    traces::{propagation, Tracing},
};

const TIMEOUT: Duration = Duration::from_secs(15);
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// `v1,` + base64 HMAC-SHA-256 of `id.timestamp.body` under the secret's key.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Why an attempt failed: the status the endpoint answered, if it answered, and what went
/// wrong.
#[derive(Debug)]
pub struct Failed(Option<u16>, String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

pub struct DeliveryWorker {
    pub db: DatabaseConnection,
    pub wake: Arc<Notify>,
    pub allow_private_targets: bool,
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    /// Opens the webhooks' sealed signing secrets.
    pub keyring: Arc<Keyring>,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// Makes each attempt a span of the trace that queued it, when traces are on.
    pub tracing: Option<Tracing>,
}

impl DeliveryWorker {
    pub fn spawn(self: Arc<Self>) {
        let (db, wake, lease) = (self.db.clone(), self.wake.clone(), self.lease);
        drain(
            db,
            &DELIVERIES,
            lease,
            wake,
            "delivering a webhook",
            move |lease| {
                let worker = self.clone();
                async move { worker.attempt(&lease).await }
            },
        );
    }

    fn backoff_ms(&self, attempts: usize) -> u64 {
        let factor = 4u64.saturating_pow(attempts.saturating_sub(1) as u32);
        self.retry_base_ms
            .saturating_mul(factor)
            .min(MAX_BACKOFF_MS)
    }

    async fn attempt(&self, lease: &Lease) -> Result<(), sea_orm::DbErr> {
        let id = lease.id();
        let Some(model) = delivery::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(());
        };
        let hook = webhook::Entity::find_by_id(model.webhook_id.clone())
            .one(&self.db)
            .await?;
        let mut attempts = model.attempts.0.clone();
        let outcome = match &hook {
            Some(hook) if hook.enabled => {
                crate::traces::continuing(
                    self.tracing.as_ref(),
                    model.trace_parent.as_deref(),
                    "webhook deliver",
                    SpanKind::Client,
                    || {
                        vec![
                            KeyValue::new("http.request.method", "POST"),
                            KeyValue::new("videovector.delivery_id", model.id.clone()),
                            KeyValue::new("videovector.event_type", model.event_type.0.as_str()),
                        ]
                    },
                    self.send(hook, &model),
                )
                .await
            }
            Some(_) => Err(Failed(None, "the webhook is disabled".to_string())),
            None => Err(Failed(None, "the webhook was deleted".to_string())),
        };
        let now = Utc::now();
        let (status, code, error) = match outcome {
            Ok(code) => (delivery::SUCCEEDED, Some(code), None),
            Err(Failed(code, error)) => (delivery::FAILED, code, Some(error)),
        };
        attempts.push(StoredAttempt {
            at: now,
            status_code: code,
            error,
        });
        let tried = attempts.len();
        let give_up =
            hook.as_ref().is_none_or(|h| !h.enabled) || tried >= self.max_attempts as usize;
        let (next_status, next_ms, delivered_at) = if status == delivery::SUCCEEDED {
            (delivery::SUCCEEDED, model.next_attempt_ms, Some(now))
        } else if give_up {
            (delivery::FAILED, model.next_attempt_ms, None)
        } else {
            let wait = self.backoff_ms(tried) as i64;
            (delivery::QUEUED, now.timestamp_millis() + wait, None)
        };
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(next_status))
            .col_expr(delivery::Column::Attempts, Expr::value(JsonText(attempts)))
            .col_expr(delivery::Column::NextAttemptMs, Expr::value(next_ms))
            .col_expr(delivery::Column::DeliveredAt, Expr::value(delivered_at))
            .filter(lease.fence())
            .exec(&self.db)
            .await?;
        if next_status == delivery::QUEUED {
            let wake = self.wake.clone();
            let wait = Duration::from_millis(self.backoff_ms(tried));
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                wake.notify_one();
            });
        }
        Ok(())
    }

    /// One POST; `Ok(status)` on 2xx, else the status (if any) and what went wrong.
    async fn send(&self, hook: &webhook::Model, model: &delivery::Model) -> Result<u16, Failed> {
        let url = net_guard::check_url(&hook.url, self.allow_private_targets)
            .map_err(|e| Failed(None, e))?;
        let client = net_guard::client_for(&url, self.allow_private_targets, TIMEOUT)
            .await
            .map_err(|e| Failed(None, e))?;
        let secret = self
            .keyring
            .open_str(&places::webhook_secret(&hook.id), &hook.secret)
            .map_err(|e| {
                tracing::error!(webhook = %hook.id, error = %e, "opening a webhook's signing secret");
                Failed(
                    None,
                    "the webhook's signing secret cannot be read with the server's secrets keys"
                        .to_string(),
                )
            })?;
        let timestamp = Utc::now().timestamp();
        // The delivery's span, when traced: the receiver's spans continue our trace.
        let mut request = client.post(url).headers(propagation::outbound_headers());
        if let Some(request_id) = &model.request_id {
            // The request that caused the event: the receiver's logs and ours name it alike.
            request = request.header("x-request-id", request_id);
        }
        let response = request
            .header("content-type", "application/json")
            .header("user-agent", "VideoVector-Webhooks/2")
            .header("webhook-id", &model.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sign(&secret, &model.id, timestamp, &model.payload),
            )
            .body(model.payload.clone())
            .send()
            .await
            .map_err(|e| Failed(None, format!("request failed: {}", net_guard::describe(&e))))?;
        let code = response.status().as_u16();
        if response.status().is_success() {
            Ok(code)
        } else {
            Err(Failed(
                Some(code),
                format!("the endpoint answered HTTP {code}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
