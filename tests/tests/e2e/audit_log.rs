//! The audit log (issue 24): each security-relevant action leaves one event in its
//! organisation's chain with who acted, from where, under which request id, and what
//! changed (never a secret); the list filters and pages; another organisation sees none of
//! it; the verifier finds an edited, a deleted and an inserted row, a wound-back head, and
//! keeps verifying across retention. Run on SQLite and, in CI, on PostgreSQL.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde_json::{json, Value};
use videovector_api_spec::Scope;
use videovector_server::{
    app::load_secrets,
    audit::{
        verify::{verify_all, verify_org, Verdict},
        AuditLog,
    },
    db::entities::{audit_event, audit_head},
    workers::audit_retention::AuditRetention,
};
use videovector_tests::{answer, LocalHttp, TestOrg, TestServer};

/// Sends one request with `X-Request-Id: request_id`.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.api(path))
        .header("X-Request-Id", request_id);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

/// Every event of the organisation, walking the pages `limit` at a time.
async fn all_events(server: &TestServer, admin: &str, limit: u32) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/audit-events?limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = call(server, Method::GET, &path, admin, None, "list").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        events.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return events,
        }
    }
}

/// The log as the server keys it.
fn audit_log(server: &TestServer) -> AuditLog {
    let (pepper, _) = load_secrets(server.config()).unwrap();
    AuditLog::new(&pepper, &server.config().jwt.issuer)
}

async fn verdict(server: &TestServer, org: &TestOrg) -> Verdict {
    verify_org(server.db(), audit_log(server).key(), &org.org_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_audited_action_names_its_actor_request_and_changes_but_no_secret() {
    let receiver = LocalHttp::start(vec![("/captions.vtt", b"WEBVTT\n".to_vec())]).await;
    let server = TestServer::start_with(|c| c.allow_private_targets = true).await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let writer = server.token(&org, &[Scope::Write]);
    let op = org.operator.id.clone();
    let mut secrets = Vec::new();

    // Logins: a wrong password, then the right one.
    let login = |password: &str| json!({"email": org.operator.email, "password": password});
    let (status, _) = call(
        &server,
        Method::POST,
        "/auth/token",
        "",
        Some(login("wrong-password")),
        "r-login-bad",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &server,
        Method::POST,
        "/auth/token",
        "",
        Some(login(&org.password)),
        "r-login",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A key's whole life, and an escalation refused.
    let key_body = json!({"name": "audited", "scopes": ["read"], "max_top_k": 5});
    let (status, created) = call(
        &server,
        Method::POST,
        "/api-keys",
        &admin,
        Some(key_body),
        "r-key-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    secrets.push(created["secret"].as_str().unwrap().to_string());
    let (status, _) = call(
        &server,
        Method::POST,
        "/api-keys",
        &writer,
        Some(json!({"name": "too much", "scopes": ["admin"]})),
        "r-key-escalate",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("/api-keys/{key_id}"),
        &admin,
        Some(json!({"name": "renamed", "max_top_k": null})),
        "r-key-update",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, rotated) = call(
        &server,
        Method::POST,
        &format!("/api-keys/{key_id}/rotate"),
        &admin,
        Some(json!({})),
        "r-key-rotate",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    secrets.push(rotated["secret"].as_str().unwrap().to_string());
    let (status, _) = call(
        &server,
        Method::POST,
        &format!("/api-keys/{key_id}/revoke"),
        &admin,
        None,
        "r-key-revoke",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/api-keys/{key_id}"),
        &admin,
        None,
        "r-key-delete",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A webhook and a connector (whose header values are secrets).
    let (status, hook) = call(
        &server,
        Method::POST,
        "/webhooks",
        &admin,
        Some(json!({"url": receiver.url("/hook"), "event_types": ["run.succeeded"]})),
        "r-hook-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook_id = hook["webhook"]["id"].as_str().unwrap().to_string();
    secrets.push(hook["secret"].as_str().unwrap().to_string());
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("/webhooks/{hook_id}"),
        &admin,
        Some(json!({"enabled": false})),
        "r-hook-update",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/webhooks/{hook_id}"),
        &admin,
        None,
        "r-hook-delete",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &server,
        Method::POST,
        "/indexes",
        &admin,
        Some(json!({"id": "idx_audit", "name": "Audit"})),
        "r-index",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let header_secret = "Bearer connector-header-secret-value";
    secrets.push(header_secret.to_string());
    let files =
        json!([{"url": receiver.url("/captions.vtt"), "media_id": "m1", "index_id": "idx_audit"}]);
    let (status, connector) = call(&server, Method::POST, "/connectors", &admin, Some(json!({"name": "c", "kind": "http", "files": files, "headers": {"Authorization": header_secret}})), "r-con-create").await;
    assert_eq!(status, StatusCode::CREATED, "{connector}");
    let connector_id = connector["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("/connectors/{connector_id}"),
        &admin,
        Some(json!({"headers": {"Authorization": "Bearer another-header-secret"}})),
        "r-con-update",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    secrets.push("another-header-secret".into());
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/connectors/{connector_id}"),
        &admin,
        None,
        "r-con-delete",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The organisation's settings.
    let (status, _) = call(
        &server,
        Method::PATCH,
        "/organization",
        &admin,
        Some(json!({"revoke_leaked_keys": false})),
        "r-org",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let limits = json!({"limits": [{"name": "reads", "family": "read", "quota": 100, "window_seconds": 60}]});
    let (status, _) = call(
        &server,
        Method::PUT,
        "/rate-limits",
        &admin,
        Some(limits),
        "r-limits",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Reads are not audited.
    let (status, _) = call(&server, Method::GET, "/api-keys", &admin, None, "r-read").await;
    assert_eq!(status, StatusCode::OK);

    let events = all_events(&server, &admin, 3).await;
    let by_request: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (e["request_id"].as_str().unwrap(), e))
        .collect();
    assert_eq!(
        by_request.len(),
        events.len(),
        "one event per request: {events:#?}"
    );
    let expect =
        |request: &str, action: &str, outcome: &str, actor: (&str, &str), target: (&str, &str)| {
            let event = by_request
                .get(request)
                .unwrap_or_else(|| panic!("no event for {request}: {events:#?}"));
            assert_eq!(event["action"], action, "{event}");
            assert_eq!(event["outcome"], outcome, "{event}");
            assert_eq!(
                event["actor"],
                json!({"type": actor.0, "id": actor.1}),
                "{event}"
            );
            assert_eq!(
                event["target"],
                json!({"type": target.0, "id": target.1}),
                "{event}"
            );
            assert_eq!(event["client_address"], "127.0.0.1", "{event}");
            (*event).clone()
        };
    let operator = ("operator", op.as_str());
    expect(
        "r-login-bad",
        "operator.login",
        "failure",
        operator,
        ("operator", &op),
    );
    expect(
        "r-login",
        "operator.login",
        "success",
        operator,
        ("operator", &op),
    );
    let create = expect(
        "r-key-create",
        "api_key.create",
        "success",
        operator,
        ("api_key", &key_id),
    );
    assert_eq!(create["changes"]["name"], json!({"to": "audited"}));
    assert_eq!(create["changes"]["max_top_k"], json!({"to": 5}));
    assert_eq!(create["changes"]["secret"], json!({"to": "[redacted]"}));
    let refused = expect(
        "r-key-escalate",
        "api_key.create",
        "failure",
        operator,
        ("api_key", ""),
    );
    assert_eq!(refused["changes"]["scopes"], json!({"to": ["admin"]}));
    let update = expect(
        "r-key-update",
        "api_key.update",
        "success",
        operator,
        ("api_key", &key_id),
    );
    assert_eq!(
        update["changes"],
        json!({"name": {"from": "audited", "to": "renamed"}, "max_top_k": {"from": 5}})
    );
    let rotate = expect(
        "r-key-rotate",
        "api_key.rotate",
        "success",
        operator,
        ("api_key", &key_id),
    );
    assert_eq!(
        rotate["changes"]["secret"],
        json!({"from": "[redacted]", "to": "[redacted]"})
    );
    assert!(
        rotate["changes"]["masked_key"]["to"].is_string(),
        "{rotate}"
    );
    let revoke = expect(
        "r-key-revoke",
        "api_key.revoke",
        "success",
        operator,
        ("api_key", &key_id),
    );
    assert_eq!(
        revoke["changes"]["status"],
        json!({"from": "active", "to": "revoked"})
    );
    let delete = expect(
        "r-key-delete",
        "api_key.delete",
        "success",
        operator,
        ("api_key", &key_id),
    );
    assert_eq!(delete["changes"]["name"], json!({"from": "renamed"}));
    expect(
        "r-hook-create",
        "webhook.create",
        "success",
        operator,
        ("webhook", &hook_id),
    );
    let hook_update = expect(
        "r-hook-update",
        "webhook.update",
        "success",
        operator,
        ("webhook", &hook_id),
    );
    assert_eq!(
        hook_update["changes"],
        json!({"enabled": {"from": true, "to": false}})
    );
    expect(
        "r-hook-delete",
        "webhook.delete",
        "success",
        operator,
        ("webhook", &hook_id),
    );
    expect(
        "r-con-create",
        "connector.create",
        "success",
        operator,
        ("connector", &connector_id),
    );
    let con_update = expect(
        "r-con-update",
        "connector.update",
        "success",
        operator,
        ("connector", &connector_id),
    );
    assert_eq!(
        con_update["changes"]["header_values"],
        json!({"from": "[redacted]", "to": "[redacted]"})
    );
    expect(
        "r-con-delete",
        "connector.delete",
        "success",
        operator,
        ("connector", &connector_id),
    );
    let org_update = expect(
        "r-org",
        "organization.update",
        "success",
        operator,
        ("organization", &org.org_id),
    );
    assert_eq!(
        org_update["changes"],
        json!({"revoke_leaked_keys": {"from": true, "to": false}})
    );
    expect(
        "r-limits",
        "organization.update_rate_limits",
        "success",
        operator,
        ("organization", &org.org_id),
    );
    assert!(!by_request.contains_key("r-read"), "a read was audited");
    assert!(
        !by_request.contains_key("r-index"),
        "index creation is not a security action"
    );

    // Never a secret, in any form the API gave it.
    let text = serde_json::to_string(&events).unwrap();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret in the audit log");
    }
    // The stored rows neither.
    let rows = audit_event::Entity::find().all(server.db()).await.unwrap();
    let stored = format!("{rows:?}");
    for secret in &secrets {
        assert!(
            !stored.contains(secret.as_str()),
            "a secret stored in the audit log"
        );
    }

    // Sequences 1.. without gaps, each linked to the one before.
    for (i, pair) in events.windows(2).enumerate() {
        assert_eq!(pair[0]["sequence"], i as i64 + 1);
        assert_eq!(pair[1]["previous_hash"], pair[0]["hash"]);
    }
    assert_eq!(events[0]["previous_hash"], "0".repeat(64));

    // Filters.
    let only = |query: &str| {
        let server = &server;
        let admin = admin.clone();
        let query = query.to_string();
        async move {
            let (status, page) = call(
                server,
                Method::GET,
                &format!("/audit-events?{query}"),
                &admin,
                None,
                "q",
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["request_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(only("action=api_key.rotate").await, ["r-key-rotate"]);
    assert_eq!(
        only(&format!("target_id={hook_id}")).await,
        ["r-hook-create", "r-hook-update", "r-hook-delete"]
    );
    assert_eq!(
        only(&format!("actor_id={op}&limit=100")).await.len(),
        events.len()
    );
    let last = events.last().unwrap()["sequence"].as_i64().unwrap();
    assert_eq!(
        only(&format!("after_sequence={}", last - 1)).await,
        ["r-limits"]
    );
    assert!(only(&format!("after_sequence={last}")).await.is_empty());
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    assert!(only(&format!("since={}", urlencode(&future)))
        .await
        .is_empty());
    assert_eq!(
        only(&format!(
            "since={}&until={}&limit=100",
            urlencode(&past),
            urlencode(&future)
        ))
        .await
        .len(),
        events.len()
    );

    // Hostile filters and cursors are 4xx problems.
    for (query, expected) in [
        ("action=api_key.steal", StatusCode::UNPROCESSABLE_ENTITY),
        ("after_sequence=-1", StatusCode::UNPROCESSABLE_ENTITY),
        ("since=yesterday", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=1000", StatusCode::UNPROCESSABLE_ENTITY),
        ("cursor=bm90LWEtY3Vyc29y", StatusCode::BAD_REQUEST),
        ("actor_id=%00", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, body) = call(
            &server,
            Method::GET,
            &format!("/audit-events?{query}"),
            &admin,
            None,
            "q",
        )
        .await;
        assert_eq!(status, expected, "{query}: {body}");
    }

    // Another organisation's admin sees none of it; a lower scope and an API key none at all.
    let other = server.org(true).await;
    let (status, page) = call(
        &server,
        Method::GET,
        "/audit-events",
        &server.token(&other, &[Scope::Admin]),
        None,
        "q",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"], json!([]));
    let (status, _) = call(&server, Method::GET, "/audit-events", &writer, None, "q").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, secret) = server.api_key(&org, &[Scope::Admin]).await;
    let (status, _) = answer(
        reqwest::Client::new()
            .get(server.api("/audit-events"))
            .header("X-API-Key", secret),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let verdicts = verify_all(server.db(), audit_log(&server).key())
        .await
        .unwrap();
    assert!(verdicts.iter().all(|v| v.broken.is_none()), "{verdicts:?}");
    server.stop().await;
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// Five events in `org`: a key created, renamed three times, revoked.
async fn five_events(server: &TestServer, org: &TestOrg) {
    let admin = server.token(org, &[Scope::Admin]);
    let (_, created) = call(
        server,
        Method::POST,
        "/api-keys",
        &admin,
        Some(json!({"name": "k", "scopes": ["read"]})),
        "e1",
    )
    .await;
    let key_id = created["key"]["id"].as_str().unwrap().to_string();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let (status, _) = call(
            server,
            Method::PATCH,
            &format!("/api-keys/{key_id}"),
            &admin,
            Some(json!({"name": name})),
            &format!("e{}", i + 2),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    call(
        server,
        Method::POST,
        &format!("/api-keys/{key_id}/revoke"),
        &admin,
        None,
        "e5",
    )
    .await;
}

async fn event_at(server: &TestServer, org: &TestOrg, sequence: i64) -> audit_event::Model {
    audit_event::Entity::find()
        .filter(audit_event::Column::OrgId.eq(&org.org_id))
        .filter(audit_event::Column::Sequence.eq(sequence))
        .one(server.db())
        .await
        .unwrap()
        .unwrap()
}

fn broken_at(verdict: &Verdict) -> (i64, String) {
    let link = verdict
        .broken
        .as_ref()
        .unwrap_or_else(|| panic!("not broken: {verdict}"));
    (link.sequence, link.reason.clone())
}

#[tokio::test]
async fn the_verifier_names_an_edited_a_deleted_and_an_inserted_row() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let bystander = server.org(true).await;
    five_events(&server, &org).await;
    five_events(&server, &bystander).await;
    assert_eq!(verdict(&server, &org).await.broken, None);
    assert_eq!(verdict(&server, &org).await.events, 5);
    let db = server.db();

    // Edited: who acted, rewritten in place.
    let original = event_at(&server, &org, 2).await;
    let mut forged = original.clone().into_active_model();
    forged.actor_id = sea_orm::ActiveValue::Set("op_someone_else".into());
    forged.update(db).await.unwrap();
    let (sequence, reason) = broken_at(&verdict(&server, &org).await);
    assert_eq!(sequence, 2);
    assert!(reason.contains("edited"), "{reason}");
    original
        .clone()
        .into_active_model()
        .reset_all()
        .update(db)
        .await
        .unwrap();
    assert_eq!(verdict(&server, &org).await.broken, None, "restored");

    // Deleted: from the middle, then from the end.
    for sequence in [3, 5] {
        let row = event_at(&server, &org, sequence).await;
        audit_event::Entity::delete_by_id(row.id.clone())
            .exec(db)
            .await
            .unwrap();
        let (at, reason) = broken_at(&verdict(&server, &org).await);
        assert_eq!(at, sequence);
        assert!(reason.contains("deleted"), "{reason}");
        audit_event::Entity::insert(row.into_active_model().reset_all())
            .exec(db)
            .await
            .unwrap();
        assert_eq!(verdict(&server, &org).await.broken, None, "restored");
    }

    // Inserted: a copy of the last event as a sixth, and one replacing the third.
    let last = event_at(&server, &org, 5).await;
    let mut extra = last.clone();
    extra.id = "aud_inserted".into();
    extra.sequence = 6;
    extra.previous_hash = last.hash.clone();
    audit_event::Entity::insert(extra.into_active_model().reset_all())
        .exec(db)
        .await
        .unwrap();
    let (at, reason) = broken_at(&verdict(&server, &org).await);
    assert_eq!(at, 6);
    assert!(reason.contains("inserted"), "{reason}");
    audit_event::Entity::delete_by_id("aud_inserted".to_string())
        .exec(db)
        .await
        .unwrap();
    let third = event_at(&server, &org, 3).await;
    audit_event::Entity::delete_by_id(third.id.clone())
        .exec(db)
        .await
        .unwrap();
    let mut replacement = event_at(&server, &org, 2).await;
    replacement.id = "aud_replacement".into();
    replacement.sequence = 3;
    audit_event::Entity::insert(replacement.into_active_model().reset_all())
        .exec(db)
        .await
        .unwrap();
    let (at, _) = broken_at(&verdict(&server, &org).await);
    assert_eq!(at, 3);
    audit_event::Entity::delete_by_id("aud_replacement".to_string())
        .exec(db)
        .await
        .unwrap();
    audit_event::Entity::insert(third.into_active_model().reset_all())
        .exec(db)
        .await
        .unwrap();
    assert_eq!(verdict(&server, &org).await.broken, None, "restored");

    // The tail cut and the head wound back to match: the head's MAC no longer holds.
    let fourth = event_at(&server, &org, 4).await;
    audit_event::Entity::delete_by_id(last.id.clone())
        .exec(db)
        .await
        .unwrap();
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::Sequence, Expr::value(4))
        .col_expr(audit_head::Column::Hash, Expr::value(fourth.hash.clone()))
        .filter(audit_head::Column::OrgId.eq(&org.org_id))
        .exec(db)
        .await
        .unwrap();
    let (_, reason) = broken_at(&verdict(&server, &org).await);
    assert!(reason.contains("head"), "{reason}");

    // The other organisation's chain was never touched.
    let verdicts = verify_all(db, audit_log(&server).key()).await.unwrap();
    let theirs = verdicts
        .iter()
        .find(|v| v.org_id == bystander.org_id)
        .unwrap();
    assert_eq!(theirs.broken, None);
    assert_eq!(theirs.events, 5);
    server.stop().await;
}

#[tokio::test]
async fn retention_prunes_the_oldest_and_the_chain_verifies_from_where_it_was_cut() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    five_events(&server, &org).await;
    let retention = AuditRetention {
        db: server.db().clone(),
        key: audit_log(&server).key().clone(),
        keep: chrono::Duration::hours(1),
        every: std::time::Duration::from_secs(3600),
    };
    assert_eq!(
        retention.prune(chrono::Utc::now()).await.unwrap(),
        0,
        "nothing is old yet"
    );
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    assert_eq!(retention.prune(later).await.unwrap(), 5);
    assert_eq!(
        verdict(&server, &org).await,
        Verdict {
            org_id: org.org_id.clone(),
            events: 0,
            broken: None
        }
    );

    // The chain goes on from where it was cut, sequences unbroken.
    five_events(&server, &org).await;
    let verdict_now = verdict(&server, &org).await;
    assert_eq!((verdict_now.events, verdict_now.broken), (5, None));
    assert_eq!(event_at(&server, &org, 6).await.previous_hash.len(), 64);

    // A deletion passed off as retention (the first retained event removed) still shows.
    let sixth = event_at(&server, &org, 6).await;
    audit_event::Entity::delete_by_id(sixth.id)
        .exec(server.db())
        .await
        .unwrap();
    let (at, reason) = broken_at(&verdict(&server, &org).await);
    assert_eq!(at, 6);
    assert!(reason.contains("deleted"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn concurrent_writers_of_one_organisation_leave_one_unbroken_chain() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    let admin = server.token(&org, &[Scope::Admin]);
    let mut writers = Vec::new();
    for i in 0..24 {
        let url = server.api("/api-keys");
        let admin = admin.clone();
        writers.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(admin)
                .json(&json!({"name": format!("k{i}"), "scopes": ["read"]}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for writer in writers {
        assert_eq!(writer.await.unwrap(), StatusCode::CREATED);
    }
    let verdict = verdict(&server, &org).await;
    assert_eq!((verdict.events, verdict.broken), (24, None));
    server.stop().await;
}

#[tokio::test]
async fn an_admin_mcp_session_reads_the_audit_log_as_a_resource_and_a_key_does_not_see_it() {
    let server = TestServer::start().await;
    let org = server.org(true).await;
    five_events(&server, &org).await;
    let url = format!("{}/mcp", server.url());
    let admin = server.token(&org, &[Scope::Admin]);
    let session = super::mcp::connect(&url, "authorization", &format!("Bearer {admin}")).await;
    let listed = serde_json::to_value(session.list_resources(None).await.unwrap()).unwrap();
    assert_eq!(
        listed["resources"][0]["uri"], "videovector://audit-events",
        "{listed}"
    );
    let read = |uri: &str| {
        let session = &session;
        let uri = uri.to_string();
        async move {
            let read = session
                .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
                .await?;
            let read = serde_json::to_value(read).unwrap();
            Ok::<Value, rmcp::ServiceError>(
                serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap(),
            )
        }
    };
    let page = read("videovector://audit-events").await.unwrap();
    let requests: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(requests, ["e1", "e2", "e3", "e4", "e5"]);
    let page = read("videovector://audit-events?action=api_key.revoke")
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert!(read("videovector://audit-events?drop=table").await.is_err());
    assert!(read("videovector://audit-events?action=nonsense")
        .await
        .is_err());

    // A lower scope, and an API key even with `admin`: not listed, not readable.
    let writer = server.token(&org, &[Scope::Write]);
    let (_, secret) = server.api_key(&org, &[Scope::Admin]).await;
    for session in [
        super::mcp::connect(&url, "authorization", &format!("Bearer {writer}")).await,
        super::mcp::connect(&url, "x-api-key", &secret).await,
    ] {
        let listed = serde_json::to_value(session.list_resources(None).await.unwrap()).unwrap();
        assert!(!listed.to_string().contains("audit-events"), "{listed}");
        let refused = session
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "videovector://audit-events",
            ))
            .await;
        assert!(refused.is_err(), "{refused:?}");
    }
    server.stop().await;
}
