//! The tantivy side: one directory per index under the search root, opened on demand, with
//! a cached writer and a manually reloaded reader.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tantivy::{
    directory::MmapDirectory,
    schema::{
        Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
        STRING,
    },
    Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

/// Writer memory budget per index (tantivy's minimum is 15 MB).
const WRITER_HEAP_BYTES: usize = 15_000_000;

/// A segment as the search index stores it.
#[derive(Debug, Clone)]
pub struct SegmentDoc {
    pub segment_id: String,
    pub media_id: String,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
    pub labels: Vec<String>,
    /// JSON text.
    pub metadata: Option<String>,
}

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub segment_id: Field,
    pub text: Field,
    pub media_id: Field,
    pub labels: Field,
    pub start: Field,
    pub end: Field,
    pub metadata: Field,
}

fn schema() -> (Schema, Fields) {
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
        media_id: builder.add_text_field("media_id", STRING | STORED),
        labels: builder.add_text_field("labels", STRING | STORED),
        start: builder.add_f64_field("start", INDEXED | STORED | FAST),
        end: builder.add_f64_field("end", INDEXED | STORED | FAST),
        metadata: builder.add_text_field("metadata", STORED),
    };
    (builder.build(), fields)
}

pub(crate) struct SearchIndex {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    writer: Mutex<Option<IndexWriter>>,
}

impl SearchIndex {
    fn open_or_create(dir: &Path) -> tantivy::Result<SearchIndex> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            writer: Mutex::new(None),
        })
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter, &Fields) -> tantivy::Result<T>,
    ) -> tantivy::Result<T> {
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(self.index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?);
        }
        let writer = slot.as_mut().expect("just set");
        f(writer, &self.fields)
    }
}

/// Every search index under one root directory.
pub struct SearchEngine {
    root: PathBuf,
    open: Mutex<HashMap<String, Arc<SearchIndex>>>,
}

impl SearchEngine {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(SearchEngine {
            root,
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, uid: &str) -> PathBuf {
        self.root.join("indexes").join(uid)
    }

    pub(crate) fn handle(&self, uid: &str) -> tantivy::Result<Arc<SearchIndex>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = open.get(uid) {
            return Ok(handle.clone());
        }
        let handle = Arc::new(SearchIndex::open_or_create(&self.dir(uid))?);
        open.insert(uid.to_string(), handle.clone());
        Ok(handle)
    }

    /// Whether the index's directory opens (false means it must be rebuilt).
    pub fn check(&self, uid: &str) -> bool {
        self.handle(uid)
            .and_then(|h| h.reader.reload().map(|_| ()))
            .is_ok()
    }

    /// Upserts and deletes segments of one index, then commits and reloads its reader.
    pub fn apply(
        &self,
        uid: &str,
        upserts: &[SegmentDoc],
        deletes: &[String],
    ) -> tantivy::Result<()> {
        let handle = self.handle(uid)?;
        handle.with_writer(|writer, fields| {
            for id in deletes {
                writer.delete_term(Term::from_field_text(fields.segment_id, id));
            }
            for doc in upserts {
                writer.delete_term(Term::from_field_text(fields.segment_id, &doc.segment_id));
                writer.add_document(to_document(fields, doc))?;
            }
            writer.commit()?;
            Ok(())
        })?;
        handle.reader.reload()
    }

    /// Removes an index and its directory.
    pub fn drop_index(&self, uid: &str) -> std::io::Result<()> {
        let removed = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        drop(removed);
        match std::fs::remove_dir_all(self.dir(uid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Uids with a directory on disk.
    pub fn uids_on_disk(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("indexes"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops every cached writer (frees their memory; they reopen on the next write).
    pub fn release_writers(&self) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for handle in open.values() {
            handle
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
    }
}

fn to_document(fields: &Fields, doc: &SegmentDoc) -> TantivyDocument {
    let mut out = TantivyDocument::default();
    out.add_text(fields.segment_id, &doc.segment_id);
    out.add_text(fields.text, &doc.text);
    out.add_text(fields.media_id, &doc.media_id);
    for label in &doc.labels {
        out.add_text(fields.labels, label);
    }
    out.add_f64(fields.start, doc.start_seconds);
    out.add_f64(fields.end, doc.end_seconds);
    if let Some(metadata) = &doc.metadata {
        out.add_text(fields.metadata, metadata);
    }
    out
}
