//! Lists as streams of items. Every paginated list's builder has a `stream()` method
//! (generated from the spec's `x-pagination`, in `generated_streams.rs`) that yields the
//! list's items, one page asked for at a time, only as the stream is read:
//!
//! ```no_run
//! # async fn run(client: &videovector_client::Client) -> Result<(), videovector_client::ApiError> {
//! use futures_util::TryStreamExt;
//!
//! let mut indexes = client.index_list().limit(50).stream();
//! while let Some(index) = indexes.try_next().await? {
//!     println!("{} {}", index.id, index.name);
//! }
//! # Ok(()) }
//! ```
//!
//! Each next page is the first request again, with its filters and `limit`, and `cursor` set
//! to the previous page's `next_cursor`; the stream ends after the page that has none, or at
//! the first error (an expired or foreign cursor, a refused credential), which it yields.

use std::{future::Future, pin::Pin};

use futures_util::{stream, Stream, StreamExt, TryStreamExt};

use crate::{types::Problem, Error, ResponseValue};

/// The items of a list, in order; each page is asked for when the one before is used up.
pub type ItemStream<'a, T> = Pin<Box<dyn Stream<Item = Result<T, Error<Problem>>> + Send + 'a>>;

/// Walks the list that `first` asks for: `send` asks for a page, `split` takes a page apart
/// into its items and the next cursor, `at` makes the request for the page at a cursor.
pub(crate) fn items<'a, B, P, T, Fut>(
    first: B,
    at: impl Fn(B, String) -> B + Copy + Send + Sync + 'a,
    send: impl Fn(B) -> Fut + Copy + Send + Sync + 'a,
    split: impl Fn(P) -> (Vec<T>, Option<String>) + Copy + Send + Sync + 'a,
) -> ItemStream<'a, T>
where
    B: Clone + Send + 'a,
    P: Send + 'a,
    T: Send + 'a,
    Fut: Future<Output = Result<ResponseValue<P>, Error<Problem>>> + Send + 'a,
{
    let template = first.clone();
    let pages = stream::try_unfold(Some(first), move |request| {
        let template = template.clone();
        async move {
            let Some(request) = request else {
                return Ok::<_, Error<Problem>>(None);
            };
            let (items, next_cursor) = split(send(request).await?.into_inner());
            let next = next_cursor.map(|cursor| at(template, cursor));
            Ok(Some((items, next)))
        }
    });
    pages
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}
