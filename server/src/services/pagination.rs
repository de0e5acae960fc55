//! Cursor pagination: pages ordered by id; the cursor is the last id, base64url-encoded so
//! clients treat it as opaque.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use videovector_api_spec::{problem::FieldError, problem::FieldLocation, ErrorCode};
use videovector_api_spec::{services::PageParams, ApiError};

use super::internal;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A validated page request.
pub struct PageRequest {
    pub limit: u64,
    /// Return ids strictly after this one.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn parse(params: PageParams) -> Result<PageRequest, ApiError> {
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::validation(vec![FieldError::at(
                FieldLocation::Query,
                "/limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )]));
        }
        let after = params
            .cursor
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            ErrorCode::InvalidCursor,
                            "the cursor is not one this API issued",
                        )
                    })
            })
            .transpose()?;
        Ok(PageRequest {
            limit: limit as u64,
            after,
        })
    }

    /// Runs `query` (already scoped to the organisation) for this page, ordered by `id`;
    /// returns the rows and the next cursor. `what` names the rows in the log on failure.
    pub async fn fetch<E: EntityTrait>(
        &self,
        db: &DatabaseConnection,
        query: Select<E>,
        id: impl ColumnTrait,
        id_of: impl Fn(&E::Model) -> &str,
        what: &str,
    ) -> Result<(Vec<E::Model>, Option<String>), ApiError> {
        let mut query = query.order_by_asc(id);
        if let Some(after) = &self.after {
            query = query.filter(id.gt(after.clone()));
        }
        let rows = query
            .limit(self.limit + 1)
            .all(db)
            .await
            .map_err(|e| internal(&format!("listing {what}"), e))?;
        Ok(self.finish(rows, id_of))
    }

    /// Splits `limit + 1` fetched rows into the page and the next cursor.
    fn finish<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = more
            .then(|| {
                rows.last()
                    .map(|r| URL_SAFE_NO_PAD.encode(id(r).as_bytes()))
            })
            .flatten();
        (rows, next)
    }
}
