//! Secrets at rest (the review's finding 4): API-key secrets and webhook signing secrets in
//! stored idempotent responses, webhook secrets and connector header values were readable in
//! the database. This test creates each, then reads the database as an attacker with a copy
//! of it would (every byte of the SQLite files, every row of every PostgreSQL table) and
//! finds none of them; then it rotates the master key and shows that what was sealed under
//! the old key still opens, and after `reseal` opens with the new key alone.

use std::{collections::HashMap, path::Path};

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use videovector_client::{types, Client, RetryPolicy};
use videovector_server::secrets_at_rest::resealing::{reseal_all, Reseal};
use videovector_tests::{common_calls::create_index, LocalHttp, TestServer};

use crate::webhooks::{deliveries, verify};

/// The secrets this test creates, as text.
struct Created {
    key_id: String,
    key_secret: String,
    rotated_key_secret: String,
    webhook_id: String,
    webhook_secret: String,
    connector_id: String,
    header_value: String,
}

impl Created {
    /// Each secret in every form a dump could show it: as is, the webhook key without its
    /// prefix, and hex (how PostgreSQL prints a `bytea`).
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut plain = vec![
            self.key_secret.clone(),
            self.rotated_key_secret.clone(),
            self.webhook_secret.clone(),
            self.webhook_secret.trim_start_matches("whsec_").to_string(),
            self.header_value.clone(),
        ];
        let hex: Vec<String> = plain
            .iter()
            .map(|s| s.bytes().map(|b| format!("{b:02x}")).collect())
            .collect();
        plain.extend(hex);
        // The key its tenant tokens are signed with, in hex and in base64.
        let tenant_key = videovector_client::tenant_token::signing_key(&self.rotated_key_secret);
        plain.push(tenant_key.iter().map(|b| format!("{b:02x}")).collect());
        plain.push(base64::engine::Engine::encode(
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            tenant_key,
        ));
        plain
            .into_iter()
            .map(|s| (s.clone(), s.into_bytes()))
            .collect()
    }
}

fn found_in(haystack: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    needles
        .iter()
        .filter(|(_, bytes)| haystack.windows(bytes.len()).any(|w| w == bytes.as_slice()))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Every file under `dir` but the server's own key files, as (path, bytes).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "secrets") {
                out.extend(files_under(&path));
            }
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Scans the database (and, on SQLite, every file in the data dir) for the secrets.
async fn assert_nothing_readable(server: &TestServer, created: &Created) {
    let needles = created.needles();
    let db = server.db();
    let mut scanned = 0;
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let tables = db
                .query_all(Statement::from_string(
                    DatabaseBackend::Postgres,
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                ))
                .await
                .unwrap();
            for table in tables {
                let name: String = table.try_get_by_index(0).unwrap();
                let dump = db
                    .query_one(Statement::from_string(
                        DatabaseBackend::Postgres,
                        format!(
                            "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM \"{name}\" t"
                        ),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                let text: String = dump.try_get_by_index(0).unwrap();
                scanned += text.len();
                let found = found_in(text.as_bytes(), &needles);
                assert!(found.is_empty(), "table {name} holds {found:?}");
            }
        }
        _ => {
            for (path, bytes) in files_under(server.data_dir.path()) {
                scanned += bytes.len();
                let found = found_in(&bytes, &needles);
                assert!(found.is_empty(), "{path} holds {found:?}");
            }
        }
    }
    assert!(scanned > 2_000, "the scan read only {scanned} bytes");
}

/// The webhook this test creates (and replays, with the same key and body).
fn hook_to(receiver: &LocalHttp) -> types::builder::WebhookCreate {
    types::WebhookCreate::builder()
        .url(receiver.url("/hook"))
        .event_types(vec![types::WebhookEventType::WebhookTest])
}

async fn create_secrets(client: &Client, receiver: &LocalHttp) -> Created {
    let key = client
        .api_key_create()
        .idempotency_key("key-1")
        .body(types::ApiKeyCreate {
            name: "at rest".parse().unwrap(),
            scopes: vec![types::Scope::Read],
            expires_in_days: None,
            rate_limits: Vec::new(),
            client_rate_limits: Vec::new(),
            allowed_cidrs: Vec::new(),
            allowed_origins: Vec::new(),
            metadata: Default::default(),
            owner_id: None,
            index_ids: Vec::new(),
            max_top_k: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    let rotated = client
        .api_key_rotate()
        .key_id(&key.key.id)
        .idempotency_key("rotate-1")
        .body(types::ApiKeyRotate::builder())
        .send()
        .await
        .unwrap()
        .into_inner();
    let webhook = client
        .webhook_create()
        .idempotency_key("hook-1")
        .body(hook_to(receiver))
        .send()
        .await
        .unwrap()
        .into_inner();
    create_index(client, "idx_rest", "At rest").await;
    let header_value = format!("Bearer connector-{}", key.key.id);
    let connector = client
        .connector_create()
        .idempotency_key("connector-1")
        .body(
            types::ConnectorCreate::builder()
                .name("sealed headers")
                .kind(types::ConnectorKind::Http)
                .files(vec![types::ConnectorFile::builder()
                    .url(receiver.url("/a.vtt"))
                    .media_id("m")
                    .index_id("idx_rest")
                    .try_into()
                    .unwrap()])
                .headers(HashMap::from([(
                    "Authorization".to_string(),
                    header_value.clone(),
                )])),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    Created {
        key_id: key.key.id,
        key_secret: key.secret,
        rotated_key_secret: rotated.secret,
        webhook_id: webhook.webhook.id,
        webhook_secret: webhook.secret,
        connector_id: connector.id,
        header_value,
    }
}

/// Everything sealed still opens: replays return the secrets, the connector's headers
/// read, and a test delivery carries a signature made with the webhook's secret.
async fn assert_everything_opens(client: &Client, receiver: &LocalHttp, created: &Created) {
    use videovector_client::ClientInfo;
    // The key's tenant tokens verify: its sealed signing key opens.
    let token = videovector_client::tenant_token(
        &created.key_id,
        &created.rotated_key_secret,
        std::time::Duration::from_secs(60),
        &Default::default(),
    )
    .unwrap();
    let searched = reqwest::Client::new()
        .post(format!("{}/indexes/idx_rest/search", client.baseurl()))
        .header("X-API-Key", token)
        .json(&serde_json::json!({"query": "anything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(searched.status(), reqwest::StatusCode::OK);
    let replayed = client
        .webhook_create()
        .idempotency_key("hook-1")
        .body(hook_to(receiver))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.into_inner().secret, created.webhook_secret);
    let connector = client
        .connector_view()
        .connector_id(&created.connector_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(connector.headers["Authorization"], "********");
    let test = client
        .webhook_test()
        .webhook_id(&created.webhook_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    for _ in 0..200 {
        let log = deliveries(client, &created.webhook_id).await;
        if log
            .iter()
            .any(|d| d.id == test.id && d.status == types::DeliveryStatus::Succeeded)
        {
            let post = receiver
                .recorded()
                .into_iter()
                .rev()
                .find(|r| r.headers.get("webhook-id") == Some(&test.id))
                .expect("the delivery reached the receiver");
            verify(&created.webhook_secret, &post);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the test delivery did not succeed");
}

const NEW_KEY: &str = "a rotated master key for secrets at rest 32+ chars";

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_survive_a_master_key_rotation() {
    let receiver = LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    // Without retries the client adds no idempotency keys of its own, so the stored
    // responses counted below are the four this test keyed.
    let client = server
        .admin_client(&org)
        .with_retry_policy(RetryPolicy::none());
    let created = create_secrets(&client, &receiver).await;
    assert_everything_opens(&client, &receiver, &created).await;
    assert_nothing_readable(&server, &created).await;

    // Rotation, step 1: the new key goes first in the key file; the old one stays.
    let key_file = server.data_dir.path().join("secrets").join("secrets_key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let server = server
        .restart(|_| std::fs::write(&key_file, format!("{NEW_KEY}\n{old_key}\n")).unwrap())
        .await;
    let client = server
        .admin_client(&org)
        .with_retry_policy(RetryPolicy::none());
    assert_everything_opens(&client, &receiver, &created).await;

    // Step 2: `reseal-secrets` rewrites what the old key sealed (four idempotent responses,
    // the webhook's secret, the connector's headers, the API key's tenant token key).
    let keyring = videovector_server::app::load_keyring(server.config()).unwrap();
    let report = reseal_all(server.db(), &keyring, Reseal::NotCurrent)
        .await
        .unwrap();
    assert_eq!((report.resealed, report.unreadable), (7, 0), "{report:?}");
    let again = reseal_all(server.db(), &keyring, Reseal::NotCurrent)
        .await
        .unwrap();
    assert_eq!(again.resealed, 0);

    // Step 3: the old key is retired; everything opens under the new key alone.
    let server = server
        .restart(|_| std::fs::write(&key_file, format!("{NEW_KEY}\n")).unwrap())
        .await;
    let client = server.admin_client(&org);
    assert_everything_opens(&client, &receiver, &created).await;
    assert_nothing_readable(&server, &created).await;
    server.stop().await;
}

/// Makes the stored headers of `connector_id` a value sealed under a key no instance of this
/// deployment holds (a lost key, a database restored from elsewhere).
async fn seal_headers_under_a_foreign_key(server: &TestServer, connector_id: &str) {
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    use videovector_server::{
        db::entities::connector,
        secrets_at_rest::{places, Keyring},
    };
    let foreign = Keyring::new(&["a key that no instance of this deployment holds"]).unwrap();
    let sealed = foreign.seal_str(
        &places::connector_headers(connector_id),
        r#"{"origins":[],"values":{"Authorization":"lost"}}"#,
    );
    let updated = connector::Entity::update_many()
        .col_expr(connector::Column::Headers, Expr::value(sealed))
        .filter(connector::Column::Id.eq(connector_id))
        .exec(server.db())
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
}

/// The review's finding 5: an instance given no secrets key made its own and started; the
/// connectors it created could not be opened by the others, whose `GET /connectors` then
/// answered 500, and setting the headers again answered 500 too. Now such an instance
/// refuses to start, naming the setting; and a value that does not open lists and reads as
/// unreadable, and setting or clearing it mends it.
#[tokio::test]
async fn a_wrong_secrets_key_fails_loudly_and_unreadable_headers_never_fail_a_read() {
    let receiver = LocalHttp::start(vec![]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let client = server.admin_client(&org);
    let created = create_secrets(&client, &receiver).await;

    // Another instance on the same database without the shared key: it would make its own.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut config = server.config().clone();
    config.data_dir = elsewhere.path().to_path_buf();
    let refused = videovector_server::start(config.clone())
        .await
        .err()
        .expect("an instance whose secrets key does not open the database refuses to start");
    let message = format!("{refused:#}");
    assert!(message.contains("VIDEOVECTOR_SECRETS_KEY"), "{message}");
    // A configured key that is not the shared one, likewise.
    config.secrets_key = Some("a secrets key that is not the deployment's one".into());
    let refused = videovector_server::start(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{refused:#}").contains("VIDEOVECTOR_SECRETS_KEY"));

    // A value sealed under a key nobody holds: listed and read, marked, never a 500.
    seal_headers_under_a_foreign_key(&server, &created.connector_id).await;
    let listed = client.connector_list().send().await.unwrap().into_inner();
    let item = listed
        .items
        .iter()
        .find(|c| c.id == created.connector_id)
        .unwrap();
    assert!(
        item.headers_unreadable && item.headers.is_empty(),
        "{item:?}"
    );
    let renamed = client
        .connector_update()
        .connector_id(&created.connector_id)
        .body(types::ConnectorUpdate::builder().name("renamed"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(renamed.headers_unreadable, "kept as stored: {renamed:?}");
    // A sync says what is wrong and how to mend it.
    let job = client
        .connector_sync()
        .connector_id(&created.connector_id)
        .send()
        .await
        .unwrap()
        .into_inner();
    let mut failed = None;
    for _ in 0..200 {
        let viewed = client.job_view().job_id(&job.id).send().await.unwrap();
        if viewed.status == types::JobStatus::Failed {
            failed = Some(viewed.into_inner());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let failed = failed.expect("the sync fails");
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("set them again"),
        "{failed:?}"
    );
    // Setting the headers again mends it.
    let mended = client
        .connector_update()
        .connector_id(&created.connector_id)
        .body(types::ConnectorUpdate::builder().headers(HashMap::from([(
            "Authorization".to_string(),
            "Bearer new".to_string(),
        )])))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!mended.headers_unreadable);
    assert_eq!(mended.headers["Authorization"], "********");
    // So does clearing them (raw: the generated client leaves an empty map out).
    seal_headers_under_a_foreign_key(&server, &created.connector_id).await;
    let cleared: serde_json::Value = reqwest::Client::new()
        .patch(server.api(&format!("/connectors/{}", created.connector_id)))
        .bearer_auth(server.token(&org, &[videovector_api_spec::Scope::Admin]))
        .json(&serde_json::json!({ "headers": {} }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["headers_unreadable"], false, "{cleared}");
    assert_eq!(cleared["headers"], serde_json::json!({}));
    server.stop().await;
}

/// The review's finding 7: idempotency fingerprints were a bare SHA-256 of the body, and a
/// connector's body holds its header values, so a dump let a guessed secret be checked
/// offline by rebuilding the body. The stored fingerprint is now keyed: the bare hash of the
/// very body sent is not what is stored.
#[tokio::test]
async fn idempotency_fingerprints_are_keyed() {
    use sea_orm::EntityTrait;
    use sha2::{Digest, Sha256};
    use videovector_server::db::entities::idempotency_record as record;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let token = server.token(&org, &[videovector_api_spec::Scope::Admin]);
    let http = reqwest::Client::new();
    let created = http
        .post(server.api("/indexes"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "id": "idx_keyed", "name": "Keyed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body = r#"{"name":"keyed","kind":"http","headers":{"Authorization":"Bearer guess-me"},"files":[{"url":"http://127.0.0.1:9/a.vtt","media_id":"m","index_id":"idx_keyed"}]}"#;
    let answer = http
        .post(server.api("/connectors"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("idempotency-key", "keyed-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
    let records = record::Entity::find().all(server.db()).await.unwrap();
    assert_eq!(records.len(), 1);
    // What earlier versions stored: SHA-256 over the length-prefixed body.
    let mut bare = Sha256::new();
    bare.update((body.len() as u64).to_be_bytes());
    bare.update(body.as_bytes());
    let bare: String = bare.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let stored = &records[0].fingerprint;
    assert_ne!(
        stored, &bare,
        "the fingerprint is the unkeyed hash of the body"
    );
    assert!(!stored.contains(&bare));
    server.stop().await;
}
