//! Typed column values: what the tables store as text, read and written as Rust types at
//! the edge of the database. A stored value that does not parse fails the read (a
//! `DbErr::Type`), like an unknown queue status; nothing turns it into a default.
//!
//! - [`JsonText`]: JSON in a text column, through serde (connector and job files, delivery
//!   attempts, prompt and run variables, labels);
//! - [`ApiJson`]: DTOs of the contract in their API form (a run's result, a webhook's
//!   event types);
//! - [`RateLimitList`]: an API key's or an organisation's rate limits, in their API form,
//!   read back on every request (parsed once per distinct text);
//! - [`ScopeList`]: an API key's scopes, space-separated as OAuth writes them;
//! - [`EventName`]: a webhook event type by its name;
//! - [`Role`]: an operator's role, and the scope it grants.

use poem_openapi::types::{ParseFromJSON, ToJSON};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use sea_orm::{
    sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr},
    ColIdx, DbErr, DeriveActiveEnum, EnumIter, QueryResult, TryGetError, TryGetable, Value,
};
use serde::{de::DeserializeOwned, Serialize};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use videovector_api_spec::{
    dto::{rate_limits::RateLimit, webhooks::WebhookEventType},
    Scope,
};

use crate::{browser_origins::AllowedOrigin, client_address::IpNetwork};

/// How a typed value is written to and read from its text column.
pub trait TextCodec: Sized {
    fn encode(&self) -> String;
    /// Refuses text that is not a value of the type, saying why.
    fn decode(text: &str) -> Result<Self, String>;
}

/// sea-orm's column traits (and rusqlite's read) for a type with a [`TextCodec`].
macro_rules! text_column {
    ([$($param:ident),*] $ty:ty) => {
        impl<$($param),*> From<$ty> for Value
        where
            $ty: TextCodec,
        {
            fn from(value: $ty) -> Value {
                Value::String(Some(Box::new(value.encode())))
            }
        }

        impl<$($param),*> TryGetable for $ty
        where
            $ty: TextCodec,
        {
            fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> Result<Self, TryGetError> {
                let text = String::try_get_by(res, index)?;
                <$ty as TextCodec>::decode(&text).map_err(|e| TryGetError::DbErr(DbErr::Type(e)))
            }
        }

        impl<$($param),*> ValueType for $ty
        where
            $ty: TextCodec,
        {
            fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
                let text = <String as ValueType>::try_from(value)?;
                <$ty as TextCodec>::decode(&text).map_err(|_| ValueTypeErr)
            }

            fn type_name() -> String {
                std::any::type_name::<Self>().into()
            }

            fn array_type() -> ArrayType {
                ArrayType::String
            }

            fn column_type() -> ColumnType {
                ColumnType::Text
            }
        }

        impl<$($param),*> Nullable for $ty {
            fn null() -> Value {
                Value::String(None)
            }
        }

        /// For the direct SQLite reads of the hot paths.
        impl<$($param),*> FromSql for $ty
        where
            $ty: TextCodec,
        {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                <$ty as TextCodec>::decode(value.as_str()?).map_err(|e| FromSqlError::Other(e.into()))
            }
        }
    };
}

/// A value stored as JSON text, through serde.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonText<T>(pub T);

impl<T: Serialize + DeserializeOwned> TextCodec for JsonText<T> {
    fn encode(&self) -> String {
        // The stored types are plain records, lists and string-keyed maps, which always
        // serialise; `null` would be refused by the read, so a bug here cannot pass silently.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "null".into())
    }

    fn decode(text: &str) -> Result<Self, String> {
        serde_json::from_str(text)
            .map(JsonText)
            .map_err(|e| format!("a stored JSON value does not parse: {e}"))
    }
}

text_column!([T] JsonText<T>);

/// A value stored as JSON text in its API form (a DTO of the contract, written and read as
/// the API writes and reads it).
#[derive(Clone, Debug)]
pub struct ApiJson<T>(pub T);

impl<T: ToJSON + ParseFromJSON> TextCodec for ApiJson<T> {
    fn encode(&self) -> String {
        self.0.to_json_string()
    }

    fn decode(text: &str) -> Result<Self, String> {
        T::parse_from_json_string(text)
            .map(ApiJson)
            .map_err(|e| format!("a stored value does not parse: {}", e.into_message()))
    }
}

impl<T: ToJSON> PartialEq for ApiJson<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_json() == other.0.to_json()
    }
}

text_column!([T] ApiJson<T>);

/// Rate limits as JSON text in their API form. A key's are read with it on every request
/// (on SQLite, from the row each time), so each distinct text is parsed once and shared:
/// most keys have none (`[]`, no parse at all) and the rest few distinct sets.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitList(pub Arc<[RateLimit]>);

/// Distinct texts a [`memoized`] decoder remembers; past it the memo starts over.
const MEMO_CAPACITY: usize = 4_096;

/// The value `text` decodes to, from `memo` when it was decoded before, else by `parse`
/// (remembered): for columns read on every request whose texts repeat.
fn memoized<T: Clone>(
    memo: &'static OnceLock<Mutex<HashMap<String, T>>>,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let memo = memo.get_or_init(Mutex::default);
    if let Some(value) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(text) {
        return Ok(value.clone());
    }
    let value = parse(text)?;
    let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= MEMO_CAPACITY {
        memo.clear();
    }
    memo.insert(text.to_string(), value.clone());
    Ok(value)
}

impl RateLimitList {
    pub fn new(limits: Vec<RateLimit>) -> Self {
        RateLimitList(limits.into())
    }

    /// No limits of its own.
    pub fn none() -> Self {
        static EMPTY: OnceLock<Arc<[RateLimit]>> = OnceLock::new();
        RateLimitList(EMPTY.get_or_init(|| Arc::from(Vec::new())).clone())
    }
}

impl TextCodec for RateLimitList {
    fn encode(&self) -> String {
        self.0.to_vec().to_json_string()
    }

    fn decode(text: &str) -> Result<Self, String> {
        if text == "[]" {
            return Ok(RateLimitList::none());
        }
        static MEMO: OnceLock<Mutex<HashMap<String, RateLimitList>>> = OnceLock::new();
        memoized(&MEMO, text, |text| {
            Vec::<RateLimit>::parse_from_json_string(text)
                .map(RateLimitList::new)
                .map_err(|e| format!("stored rate limits do not parse: {}", e.into_message()))
        })
    }
}

text_column!([] RateLimitList);

/// A list of texts each parsed into a `T` (an API key's networks, its web pages), stored as
/// the texts given (JSON) and shown back as given. Read with the key on every request, so
/// each distinct text is parsed once and shared, as [`RateLimitList`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedList<T> {
    /// As given.
    pub given: Arc<[String]>,
    pub parsed: Arc<[T]>,
}

/// An item of a [`ParsedList`]: how it parses, and where lists of it are remembered.
pub trait ListItem: Clone + Send + Sync + 'static {
    /// What an item is called in a stored value's error.
    const NOUN: &'static str;
    fn parse(text: &str) -> Result<Self, String>;
    /// The memo of decoded lists (one static per item type: the statics of a generic
    /// function are shared by all its instances).
    fn memo() -> &'static OnceLock<Mutex<HashMap<String, ParsedList<Self>>>>;
    /// The empty list, shared: most keys have no restriction, and `[]` is read without a
    /// lock.
    fn empty() -> &'static OnceLock<ParsedList<Self>>;
}

impl<T: ListItem> ParsedList<T> {
    /// `given` parsed; the index and message of the first that does not parse.
    pub fn parse(given: Vec<String>) -> Result<Self, (usize, String)> {
        let parsed = given
            .iter()
            .enumerate()
            .map(|(i, text)| T::parse(text).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParsedList {
            given: given.into(),
            parsed: parsed.into(),
        })
    }
}

impl<T: ListItem> TextCodec for ParsedList<T> {
    fn encode(&self) -> String {
        serde_json::to_string(&self.given).unwrap_or_else(|_| "[]".into())
    }

    fn decode(text: &str) -> Result<Self, String> {
        if text == "[]" {
            let empty = || ParsedList {
                given: Arc::from(Vec::new()),
                parsed: Arc::from(Vec::new()),
            };
            return Ok(T::empty().get_or_init(empty).clone());
        }
        memoized(T::memo(), text, |text| {
            let given: Vec<String> = serde_json::from_str(text)
                .map_err(|e| format!("a stored list of {}s does not parse: {e}", T::NOUN))?;
            ParsedList::parse(given)
                .map_err(|(_, e)| format!("a stored {} does not parse: {e}", T::NOUN))
        })
    }
}

text_column!([T] ParsedList<T>);

/// The networks an API key may be used from (empty: anywhere).
pub type NetworkList = ParsedList<IpNetwork>;

impl ListItem for IpNetwork {
    const NOUN: &'static str = "network";

    fn parse(text: &str) -> Result<Self, String> {
        IpNetwork::parse(text).map_err(|e| e.to_string())
    }

    fn memo() -> &'static OnceLock<Mutex<HashMap<String, NetworkList>>> {
        static MEMO: OnceLock<Mutex<HashMap<String, NetworkList>>> = OnceLock::new();
        &MEMO
    }

    fn empty() -> &'static OnceLock<NetworkList> {
        static EMPTY: OnceLock<NetworkList> = OnceLock::new();
        &EMPTY
    }
}

impl NetworkList {
    /// Whether a client at `address` may use the key (`None`: the address is not known,
    /// which only an in-process call has).
    pub fn admits(&self, address: Option<std::net::IpAddr>) -> bool {
        self.parsed.is_empty() || address.is_some_and(|a| self.parsed.iter().any(|n| n.contains(a)))
    }
}

/// The web pages of other sites an API key may be used from (empty: none).
pub type OriginList = ParsedList<AllowedOrigin>;

impl ListItem for AllowedOrigin {
    const NOUN: &'static str = "origin";

    fn parse(text: &str) -> Result<Self, String> {
        AllowedOrigin::parse(text)
    }

    fn memo() -> &'static OnceLock<Mutex<HashMap<String, OriginList>>> {
        static MEMO: OnceLock<Mutex<HashMap<String, OriginList>>> = OnceLock::new();
        &MEMO
    }

    fn empty() -> &'static OnceLock<OriginList> {
        static EMPTY: OnceLock<OriginList> = OnceLock::new();
        &EMPTY
    }
}

impl OriginList {
    /// Whether a page at `origin` may use the key.
    pub fn admits(&self, origin: &str) -> bool {
        self.parsed.iter().any(|a| a.admits(origin))
    }
}

/// The indexes an API key may touch, stored as JSON ids (`[]`: every index). Read with the
/// key on every request, so each distinct text is parsed once and shared, as
/// [`RateLimitList`].
#[derive(Clone, Debug, PartialEq)]
pub struct IndexIdList(pub Arc<[String]>);

impl IndexIdList {
    pub fn new(ids: Vec<String>) -> Self {
        let mut ids = ids;
        ids.sort();
        ids.dedup();
        IndexIdList(ids.into())
    }

    /// No restriction: every index.
    pub fn every() -> Self {
        static EMPTY: OnceLock<Arc<[String]>> = OnceLock::new();
        IndexIdList(EMPTY.get_or_init(|| Arc::from(Vec::new())).clone())
    }
}

impl TextCodec for IndexIdList {
    fn encode(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }

    fn decode(text: &str) -> Result<Self, String> {
        if text == "[]" {
            return Ok(IndexIdList::every());
        }
        static MEMO: OnceLock<Mutex<HashMap<String, IndexIdList>>> = OnceLock::new();
        memoized(&MEMO, text, |text| {
            serde_json::from_str::<Vec<String>>(text)
                .map(|ids| IndexIdList(ids.into()))
                .map_err(|e| format!("stored index ids do not parse: {e}"))
        })
    }
}

text_column!([] IndexIdList);

/// A webhook event type, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventName(pub WebhookEventType);

impl TextCodec for EventName {
    fn encode(&self) -> String {
        self.0.as_str().into()
    }

    fn decode(text: &str) -> Result<Self, String> {
        WebhookEventType::parse(text)
            .map(EventName)
            .ok_or_else(|| format!("`{text}` is not an event type"))
    }
}

text_column!([] EventName);

/// An API key's scopes: a set, stored space-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeList(Vec<Scope>);

impl ScopeList {
    /// Sorted and without repeats, so the stored text is canonical.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut list: Vec<Scope> = scopes.into_iter().collect();
        list.sort();
        list.dedup();
        ScopeList(list)
    }

    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    pub fn to_vec(&self) -> Vec<Scope> {
        self.0.clone()
    }
}

impl TextCodec for ScopeList {
    fn encode(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        names.join(" ")
    }

    /// Every name must be a scope.
    fn decode(text: &str) -> Result<Self, String> {
        text.split_whitespace()
            .map(|name| Scope::parse(name).ok_or_else(|| format!("`{name}` is not a scope")))
            .collect::<Result<Vec<_>, _>>()
            .map(ScopeList::new)
    }
}

text_column!([] ScopeList);

/// An operator's role. Each grants one scope (and the scopes below it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Role {
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "writer")]
    Writer,
    #[sea_orm(string_value = "reader")]
    Reader,
    #[sea_orm(string_value = "searcher")]
    Searcher,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Writer, Role::Reader, Role::Searcher];

    /// The scope the role grants.
    pub fn scope(self) -> Scope {
        match self {
            Role::Admin => Scope::Admin,
            Role::Writer => Scope::Write,
            Role::Reader => Scope::Read,
            Role::Searcher => Scope::Search,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Searcher => "searcher",
        }
    }

    /// A role by its stored name (as the command line takes it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_are_canonical_and_refuse_unknown_names() {
        let list = ScopeList::decode("search read  search").unwrap();
        assert_eq!(list.as_slice().len(), 2);
        assert_eq!(list, ScopeList::new([Scope::Read, Scope::Search]));
        assert_eq!(ScopeList::decode(&list.encode()).unwrap(), list);
        assert!(ScopeList::decode("read bogus")
            .unwrap_err()
            .contains("bogus"));
        assert_eq!(ScopeList::decode("").unwrap(), ScopeList::default());
    }

    #[test]
    fn json_values_round_trip_and_refuse_garbage() {
        let value: Value = JsonText(vec!["a".to_string()]).into();
        let back = <JsonText<Vec<String>> as ValueType>::try_from(value).unwrap();
        assert_eq!(back.0, vec!["a"]);
        let garbage = Value::String(Some(Box::new("{not json".into())));
        assert!(<JsonText<Vec<String>> as ValueType>::try_from(garbage).is_err());
        let wrong_shape = Value::String(Some(Box::new("{\"a\": 1}".into())));
        assert!(<JsonText<Vec<String>> as ValueType>::try_from(wrong_shape).is_err());
    }

    /// Typed values round-trip through a real table, and a stored value edited into
    /// something else fails the read, through sea-orm and through the direct SQLite reads.
    #[tokio::test]
    async fn stored_values_round_trip_and_edited_ones_fail_the_read() {
        use sea_orm::{ConnectionTrait, EntityTrait};

        use crate::db::{
            entities::run,
            queue::QueueStatus,
            scratch::{insert_run, scratch_db, scratch_path},
        };
        let (dir, db) = scratch_db().await;
        let variables = JsonText([("topic".to_string(), "bridges".to_string())].into());
        insert_run(&db, "run_1", QueueStatus::Queued, None, variables.clone()).await;
        let read = run::Entity::find_by_id("run_1")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.variables, variables);
        assert_eq!(read.result, None);
        for edit in [
            "UPDATE runs SET variables = '[\"not\", \"a map\"]'",
            "UPDATE runs SET variables = '{}', result = '{\"answer\": 1}'",
        ] {
            db.execute_unprepared(edit).await.unwrap();
            let refused = run::Entity::find_by_id("run_1").one(&db).await;
            assert!(refused.is_err(), "{edit} must fail the read");
        }

        // The direct read of the API-key hot path refuses an unknown scope too.
        let conn = rusqlite::Connection::open(scratch_path(&dir)).unwrap();
        let scopes =
            |text: &str| conn.query_row("SELECT ?1", [text], |row| row.get::<_, ScopeList>(0));
        assert_eq!(
            scopes("read search").unwrap(),
            ScopeList::new([Scope::Search, Scope::Read])
        );
        assert!(scopes("read superuser").is_err());
    }

    #[test]
    fn roles_name_their_scopes() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::Writer.scope(), Scope::Write);
        assert_eq!(Role::parse("owner"), None);
    }
}
