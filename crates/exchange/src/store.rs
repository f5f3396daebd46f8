//! The engine's durable log (redb): every [`Event`] in the order it happened, written before
//! the engine answers or hands a match to the node; [`restore`] replays it into the engine it
//! was (same ids, books, reservations).
//!
//! A crash before an event is written loses only what nobody was told: the request gets no
//! answer and none of its matches were sent.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::engine::{Engine, EngineConfig, EngineError, Event};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("exchange store: {0}")]
    Db(String),
    #[error("exchange store: event {seq} does not decode: {error}")]
    Decode { seq: u64, error: String },
    #[error("exchange store: event {seq} does not replay: {error}")]
    Replay { seq: u64, error: EngineError },
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store in the file `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let database = Database::create(path).map_err(db)?;
        let w = database.begin_write().map_err(db)?;
        w.open_table(EVENTS).map_err(db)?;
        w.commit().map_err(db)?;
        Ok(Self { db: database })
    }

    /// Appends `event` durably; its sequence number.
    pub fn append(&self, event: &Event) -> Result<u64, StoreError> {
        let bytes = serde_json::to_vec(event).map_err(db)?;
        let w = self.db.begin_write().map_err(db)?;
        let seq = {
            let mut t = w.open_table(EVENTS).map_err(db)?;
            let seq = t.last().map_err(db)?.map_or(0, |(k, _)| k.value() + 1);
            t.insert(seq, bytes.as_slice()).map_err(db)?;
            seq
        };
        w.commit().map_err(db)?;
        Ok(seq)
    }

    /// Appends `events` durably in one commit (all or none).
    pub fn append_all(&self, events: &[Event]) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(db)?;
        {
            let mut t = w.open_table(EVENTS).map_err(db)?;
            let first = t.last().map_err(db)?.map_or(0, |(k, _)| k.value() + 1);
            for (seq, event) in (first..).zip(events) {
                let bytes = serde_json::to_vec(event).map_err(db)?;
                t.insert(seq, bytes.as_slice()).map_err(db)?;
            }
        }
        w.commit().map_err(db)
    }

    /// Every event, in order.
    pub fn events(&self) -> Result<Vec<Event>, StoreError> {
        let r = self.db.begin_read().map_err(db)?;
        let t = r.open_table(EVENTS).map_err(db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db)? {
            let (k, v) = item.map_err(db)?;
            let event = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Decode { seq: k.value(), error: e.to_string() })?;
            out.push(event);
        }
        Ok(out)
    }
}

/// The engine of `config` after every event of `store`.
pub fn restore(config: EngineConfig, store: &Store) -> Result<Engine, StoreError> {
    let mut engine = Engine::new(config).map_err(|error| StoreError::Replay { seq: 0, error })?;
    for (seq, event) in store.events()?.iter().enumerate() {
        engine.replay(event).map_err(|error| StoreError::Replay { seq: seq as u64, error })?;
    }
    Ok(engine)
}
