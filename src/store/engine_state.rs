//! SQL for the decision engine's memory: one row, rewritten when the memory changes, read at start.
//! It stores the text it is given; what the text says is `engine::Memory`'s.

use super::{Store, StoreError, query_err};

/// The stored memory: when it was saved (Unix ms) and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStateRow {
    /// When it was saved, Unix ms.
    pub saved_at_ms: i64,
    /// The memory, as JSON.
    pub state: String,
}

impl Store {
    /// Replaces the stored engine memory.
    pub async fn save_engine_state(&self, saved_at_ms: i64, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO engine_state (id, saved_at_ms, state) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET saved_at_ms = excluded.saved_at_ms, state = excluded.state",
        )
        .bind(saved_at_ms)
        .bind(state)
        .execute(&self.writer)
        .await
        .map_err(query_err("saving the engine state"))?;
        Ok(())
    }

    /// The stored engine memory, if any was saved.
    pub async fn engine_state(&self) -> Result<Option<EngineStateRow>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT saved_at_ms, state FROM engine_state WHERE id = 1")
                .fetch_optional(&self.reader)
                .await
                .map_err(query_err("reading the engine state"))?;
        Ok(row.map(|(saved_at_ms, state)| EngineStateRow { saved_at_ms, state }))
    }
}
