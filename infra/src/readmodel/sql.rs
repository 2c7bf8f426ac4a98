//! A small builder for queries whose filters vary. sqlx's `QueryBuilder`
//! writes `?` placeholders for the `Any` driver, which PostgreSQL refuses;
//! this one numbers them `$1, $2, …`, which both backends accept.
//!
//! Large statements (multi-row upserts, `IN` lists of hundreds) go to
//! SQLite with anonymous `?` instead ([`Sql::for_dialect`]). SQLite keeps
//! `$n` parameters in a list that it searches by name for each one when it
//! prepares a statement, and sqlx-sqlite asks it for each parameter's name
//! again at every execution, so a statement with k numbered parameters
//! costs O(k²). A profile of SQLite ingest showed those two searches
//! (`sqlite3_bind_parameter_name` and the `strncmp` under it) at 18 % of the
//! server's CPU. Anonymous `?` are bound by position: O(k).
//!
//! So a query runs only through [`Sql::query`] or [`Sql::query_scalar`],
//! which take the [`Dialect`] of the database it runs on
//! ([`crate::store::dialect_of`] a pool, [`crate::store::dialect_named`] a
//! connection's `backend_name()`) and write its placeholders for it.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::store::Dialect;

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    Real(f64),
    Int(i64),
    Null,
}

/// Binds every value, in order, to a query or scalar query.
macro_rules! bind_all {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Real(real) => query.bind(*real),
                Value::Int(int) => query.bind(*int),
                Value::Null => query.bind(None::<String>),
            };
        }
        query
    }};
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            values: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Value) -> &mut Self {
        self.values.push(value);
        self.text.push_str(&format!("${}", self.values.len()));
        self
    }

    /// `AND {column} IN ($n, …)`; nothing when `values` is empty.
    pub fn and_in(&mut self, column: &str, values: &[&str]) -> &mut Self {
        if values.is_empty() {
            return self;
        }
        self.push(&format!(" AND {column} IN ("));
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(Value::Text((*value).to_string()));
        }
        self.push(")")
    }

    /// `AND {column} LIKE '%text%'`, with `text` taken literally
    /// (the caller lower-cases both sides when it wants no case).
    pub fn and_contains(&mut self, column: &str, text: &str) -> &mut Self {
        self.push(&format!(" AND {column} LIKE "))
            .bind(Value::Text(format!("%{}%", like_escape(text))))
            .push(" ESCAPE '\\'")
    }

    /// `SELECT COUNT(*)` over the first `limit` rows this query returns; a
    /// leading `SELECT doc` becomes `SELECT 1`, so no document is read.
    pub fn counted_up_to(&self, limit: i64) -> Sql {
        let rows = match self.text.strip_prefix("SELECT doc ") {
            Some(rest) => format!("SELECT 1 {rest}"),
            None => self.text.clone(),
        };
        let mut sql = Sql {
            text: format!("SELECT COUNT(*) FROM ({rows}"),
            values: self.values.clone(),
        };
        sql.push(" LIMIT ").bind(Value::Int(limit));
        sql.push(") AS matching");
        sql
    }

    /// Writes this query's placeholders as `dialect` wants them: anonymous
    /// `?` on SQLite (see the module docs), `$n` on PostgreSQL.
    pub fn for_dialect(&mut self, dialect: &dyn Dialect) -> &mut Self {
        if dialect.anonymous_placeholders() {
            if let Some(text) = anonymous(&self.text, self.values.len()) {
                self.text = text;
            }
        }
        self
    }

    /// [`Sql::for_dialect`] for a connection's `backend_name()`.
    #[cfg(test)]
    pub fn for_backend(&mut self, backend: &str) -> &mut Self {
        self.for_dialect(crate::store::dialect_named(backend))
    }

    /// The query, its placeholders written for `dialect` (see
    /// [`Sql::for_dialect`]), every value bound.
    pub fn query_scalar<T>(
        &mut self,
        dialect: &dyn Dialect,
    ) -> sqlx::query::QueryScalar<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        self.for_dialect(dialect);
        bind_all!(sqlx::query_scalar(&self.text), &self.values)
    }

    /// The query, its placeholders written for `dialect` (see
    /// [`Sql::for_dialect`]), every value bound.
    pub fn query(&mut self, dialect: &dyn Dialect) -> Query<'_, Any, AnyArguments<'_>> {
        self.for_dialect(dialect);
        bind_all!(sqlx::query(&self.text), &self.values)
    }
}

/// `text` with its placeholders `$1 … $count` written as `?`, when they
/// appear exactly in that order, each once (as [`Sql::bind`] writes them);
/// otherwise None, and the query keeps its numbered placeholders.
pub(crate) fn anonymous(text: &str, count: usize) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut next = 1;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        if after[..digits].parse::<usize>().ok()? != next {
            return None;
        }
        out.push('?');
        next += 1;
        rest = &after[digits..];
    }
    out.push_str(rest);
    (next == count + 1).then_some(out)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::{anonymous, Sql, Value};

    #[test]
    fn placeholders_in_order_become_anonymous() {
        let mut sql = Sql::new("INSERT INTO t VALUES ");
        for i in 0..12 {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(Value::Int(i))
                .push(")");
        }
        assert!(sql.text.contains("($10), ($11), ($12)"));
        sql.for_backend("SQLite");
        assert_eq!(sql.text.matches('?').count(), 12);
        assert!(!sql.text.contains('$'));
        let mut kept = Sql::new("SELECT 1 WHERE a = ");
        kept.bind(Value::Int(1));
        kept.for_backend("PostgreSQL");
        assert_eq!(kept.text, "SELECT 1 WHERE a = $1");
    }

    #[test]
    fn anything_but_one_of_each_in_order_keeps_the_numbers() {
        assert_eq!(
            anonymous("a = $1 AND b = $2", 2).as_deref(),
            Some("a = ? AND b = ?")
        );
        assert_eq!(anonymous("a = $2 AND b = $1", 2), None);
        assert_eq!(anonymous("a = $1 OR b = $1", 1), None);
        assert_eq!(anonymous("a = $1", 2), None);
        assert_eq!(
            anonymous("price = '$' AND a = $1", 1).as_deref(),
            Some("price = '$' AND a = ?")
        );
    }
}
