//! The SQLite side of [`Db`]: statements are prepared once per connection
//! and cached; values cross as SQLite's own five storage classes.

use super::{Backend, Db, EVENT_ROWS, Row, Value};
use crate::error::{StoreError, StoreResult};
use pushpals_core::chain::StoredRow;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Int(v) => ValueRef::Integer(*v),
            Self::Real(v) => ValueRef::Real(*v),
            Self::Text(v) => ValueRef::Text(v.as_bytes()),
            Self::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn value_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}

fn row_of(row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Row> {
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        values.push(value_of(row.get_ref(index)?));
    }
    Ok(Row(values))
}

impl Db for Connection {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let changed = self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }

    fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let mut rows = Vec::new();
        self.for_each(sql, params, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }

    fn for_each(
        &self,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut statement = self.prepare_cached(sql)?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            each(row_of(row, columns)?)?;
        }
        Ok(())
    }

    fn for_each_event(
        &self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(&StoredRow<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut statement = self.prepare_cached(EVENT_ROWS)?;
        let mut rows = statement.query([from, to])?;
        while let Some(row) = rows.next()? {
            let text = |index: usize| -> StoreResult<Option<&str>> {
                match row.get_ref(index)? {
                    ValueRef::Null => Ok(None),
                    value => value.as_str().map(Some).map_err(|e| StoreError::Corrupt {
                        table: "events",
                        detail: format!("column {index}: {e}"),
                    }),
                }
            };
            let needed = |index: usize| -> StoreResult<&str> {
                text(index)?.ok_or_else(|| StoreError::Corrupt {
                    table: "events",
                    detail: format!("column {index} is null"),
                })
            };
            each(&StoredRow {
                id: row.get(0)?,
                task_id: text(1)?,
                time: needed(2)?,
                actor: needed(3)?,
                kind: needed(4)?,
                payload_text: needed(5)?,
                prev_hash: needed(6)?,
                hash: needed(7)?,
            })?;
        }
        Ok(())
    }

    fn batch(&self, sql: &str) -> StoreResult<()> {
        Ok(self.execute_batch(sql)?)
    }
}
