//! What the store's queries run on: one SQL connection or transaction, of
//! either backend (SQLite, embedded; PostgreSQL, a server).
//!
//! Every query is written once, with SQLite's numbered parameters (`?1`,
//! `?2`), in the SQL both backends share; the PostgreSQL side numbers them
//! its way (`$1`). Values cross as [`Value`] (the five kinds both backends
//! store: null, integer, real, text, bytes) and rows come back as [`Row`],
//! read by column index. The few statements the two speak differently
//! (reading a JSON field, a pragma) ask [`Db::backend`].

pub(crate) mod postgres;
pub(crate) mod sqlite;

use crate::error::{StoreError, StoreResult};
use pushpals_core::chain::StoredRow;

/// The event log's rows as [`Db::for_each_event`] reads them: those with
/// ids from `?1` up to, not including, `?2`.
pub(crate) const EVENT_ROWS: &str = "SELECT id, task_id, time, actor, kind, payload, prev_hash, hash \
     FROM events WHERE id >= ?1 AND id < ?2 ORDER BY id";

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file in the data directory.
    Sqlite,
    /// PostgreSQL, a server.
    Postgres,
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (counts, ids, flags).
    Int(i64),
    /// A double.
    Real(f64),
    /// Text (JSON is stored as text, so its bytes are kept exactly).
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Self::Real(value)
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<&&str> for Value {
    fn from(value: &&str) -> Self {
        Self::Text((*value).to_owned())
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Self::Blob(value)
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Self {
        Self::Blob(value.to_vec())
    }
}

impl From<&Vec<u8>> for Value {
    fn from(value: &Vec<u8>) -> Self {
        Self::Blob(value.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// Builds a statement's parameters: `params![a, b]` is `[Value::from(a),
/// Value::from(b)]`.
macro_rules! params {
    () => { [] as [$crate::sql::Value; 0] };
    ($($value:expr),+ $(,)?) => { [$($crate::sql::Value::from($value)),+] };
}
pub(crate) use params;

/// A value read back into a Rust type.
pub(crate) trait FromValue: Sized {
    /// The value as `Self`, or what it was instead.
    fn from_value(value: &Value) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(v) => Ok(*v),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        i64::from_value(value).map(|v| v != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(v) => Ok(*v),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(v) => Ok(*v as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Blob(v) => Ok(v.clone()),
            Value::Text(v) => Ok(v.clone().into_bytes()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row of a result, its columns in the order the query named them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Column `index` as `T`; a wrong type or a missing column is a
    /// corrupt row.
    pub(crate) fn get<T: FromValue>(&self, index: usize) -> StoreResult<T> {
        let value = self.0.get(index).ok_or_else(|| StoreError::Corrupt {
            table: "a query",
            detail: format!("no column {index}"),
        })?;
        T::from_value(value).map_err(|detail| StoreError::Corrupt {
            table: "a query",
            detail: format!("column {index}: {detail}"),
        })
    }

    /// The row's values, in column order.
    pub(crate) fn into_values(self) -> Vec<Value> {
        self.0
    }
}

/// One connection or open transaction of either backend. Queries are
/// written in the shared SQL with `?N` parameters.
pub(crate) trait Db {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Runs a statement; returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64>;

    /// Runs a query and collects its rows.
    fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>>;

    /// Runs a query and hands each row to `each` as it arrives, so a long
    /// read (the whole log) does not gather it in memory.
    fn for_each(
        &self,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> StoreResult<()>,
    ) -> StoreResult<()>;

    /// Hands each event with an id in `from..to`, in id order, to `each` as
    /// text borrowed from the connection, with nothing copied: the hot path
    /// of `audit verify`.
    fn for_each_event(
        &self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(&StoredRow<'_>) -> StoreResult<()>,
    ) -> StoreResult<()>;

    /// Runs statements that take no parameters, one after the other.
    fn batch(&self, sql: &str) -> StoreResult<()>;

    /// The first row of a query, if any.
    fn query_opt(&self, sql: &str, params: &[Value]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query, which must have one.
    fn query_one(&self, sql: &str, params: &[Value]) -> StoreResult<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Writer(format!("the query returned no row: {sql}")))
    }
}
