//! The search copy's tantivy schema: the fields of a segment's document, and their
//! handles ([`Fields`]) for the engine, the queries and the vectors.

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub segment_id: Field,
    pub text: Field,
    pub media_id: Field,
    pub labels: Field,
    pub start: Field,
    pub end: Field,
    pub metadata: Field,
    /// The quantised vector (`search::vectors`), stored only.
    pub vector: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        segment_id: builder.add_text_field("segment_id", STRING | STORED),
        text: builder.add_text_field("text", text_options),
        media_id: builder.add_text_field("media_id", STRING | STORED | FAST),
        labels: builder.add_text_field("labels", STRING | STORED),
        start: builder.add_f64_field("start", INDEXED | STORED | FAST),
        end: builder.add_f64_field("end", INDEXED | STORED | FAST),
        metadata: builder.add_text_field("metadata", STORED),
        vector: builder.add_bytes_field("vector", STORED),
    };
    (builder.build(), fields)
}
