//! Many rows in one statement, handed over as one JSON parameter.
//!
//! A multi-row `VALUES` list binds a parameter per value: 1,000 rows of 10 columns are
//! 10,000 of them, each encoded, sent and decoded on its own, and SQLite's binding through
//! `sqlx::Any` takes time quadratic in their number. Instead the rows go as one JSON array
//! of arrays (`[["id", "user", 17], …]`) that the statement unpacks on the server,
//! `INSERT INTO t (a, b, c) SELECT … FROM <the rows>`, with PostgreSQL's
//! `jsonb_array_elements` or SQLite's `json_each`. The statement's text does not depend on
//! the number of rows, so each connection prepares it once.

use serde::Serialize;

use crate::db::Backend;

/// Rows per statement: a bound on one parameter's size, not on the statement's cost.
pub const ROWS_PER_STATEMENT: usize = 2_000;

/// The SQL type a column of [`JsonRows`] is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Text,
    BigInt,
    /// JSON `true`/`false`: BOOLEAN on PostgreSQL, 1/0 on SQLite.
    Bool,
}

/// Rows collected as one JSON array, to bind as a single text parameter.
#[derive(Debug, Clone)]
pub struct JsonRows {
    json: String,
    rows: usize,
}

impl Default for JsonRows {
    fn default() -> Self {
        JsonRows::new()
    }
}

impl JsonRows {
    pub fn new() -> JsonRows {
        JsonRows {
            json: String::from("["),
            rows: 0,
        }
    }

    /// Appends one row: a tuple (or slice) whose values are in the order of the columns
    /// given to [`select_rows`]; `None` is NULL.
    pub fn push<T: Serialize + ?Sized>(&mut self, row: &T) -> Result<(), sqlx::Error> {
        let row = serde_json::to_string(row).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        if self.rows > 0 {
            self.json.push(',');
        }
        self.json.push_str(&row);
        self.rows += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The JSON text to bind.
    pub fn finish(mut self) -> String {
        self.json.push(']');
        self.json
    }
}

/// The JSON text of a list of values, to bind for [`select_list`].
pub fn json_list<T: Serialize>(values: impl IntoIterator<Item = T>) -> Result<String, sqlx::Error> {
    let values: Vec<T> = values.into_iter().collect();
    serde_json::to_string(&values).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The rows of the JSON array of arrays bound to `$param`, as `SELECT … FROM … WHERE true`
/// with the columns named and typed as given, for `INSERT INTO t (…) <this> ON CONFLICT …`
/// (the `WHERE` tells SQLite's parser that the `ON` that follows is the upsert's).
pub fn select_rows(backend: Backend, param: usize, columns: &[(&str, SqlType)]) -> String {
    let columns: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, sql_type))| {
            let sql_type = match sql_type {
                SqlType::Text => "TEXT",
                SqlType::BigInt => "BIGINT",
                SqlType::Bool => "BOOLEAN",
            };
            format!("CAST(r.value->>{i} AS {sql_type}) AS {name}")
        })
        .collect();
    format!(
        "SELECT {} FROM {} WHERE true",
        columns.join(", "),
        elements(backend, param)
    )
}

/// `SELECT … AS value FROM …`: the strings of the JSON array bound to `$param`, for
/// `x IN (<this>)` or `FROM (<this>) AS e`.
pub fn select_list(backend: Backend, param: usize) -> String {
    match backend {
        Backend::Postgres => format!(
            "SELECT r.value FROM jsonb_array_elements_text(CAST(${param} AS JSONB)) AS r(value)"
        ),
        Backend::Sqlite => format!("SELECT r.value AS value FROM json_each(${param}) AS r"),
    }
}

/// The elements of the JSON array bound to `$param`, one row each, as `r.value`.
fn elements(backend: Backend, param: usize) -> String {
    match backend {
        Backend::Postgres => format!("jsonb_array_elements(CAST(${param} AS JSONB)) AS r(value)"),
        Backend::Sqlite => format!("json_each(${param}) AS r"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_one_json_array_of_arrays() {
        let mut rows = JsonRows::new();
        assert!(rows.is_empty());
        rows.push(&("a\"b", 1_i64, None::<String>)).unwrap();
        rows.push(&("c", 2_i64, Some("d"))).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.finish(), r#"[["a\"b",1,null],["c",2,"d"]]"#);
        assert_eq!(JsonRows::new().finish(), "[]");
    }

    #[test]
    fn the_statement_reads_each_column_by_position() {
        let sql = select_rows(
            Backend::Postgres,
            2,
            &[("id", SqlType::Text), ("at", SqlType::BigInt)],
        );
        assert_eq!(
            sql,
            "SELECT CAST(r.value->>0 AS TEXT) AS id, CAST(r.value->>1 AS BIGINT) AS at \
             FROM jsonb_array_elements(CAST($2 AS JSONB)) AS r(value) WHERE true"
        );
        assert!(select_list(Backend::Sqlite, 1).ends_with("FROM json_each($1) AS r"));
    }
}
