//! A small builder for queries whose filters vary. sqlx's `QueryBuilder`
//! writes `?` placeholders for the `Any` driver, which PostgreSQL refuses;
//! this one numbers them `$1, $2, …`, which both backends accept.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

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

    /// `SELECT COUNT(*)` over the rows this query returns; a leading
    /// `SELECT doc` becomes `SELECT 1`, so no document is read.
    pub fn counted(&self) -> Sql {
        let rows = match self.text.strip_prefix("SELECT doc ") {
            Some(rest) => format!("SELECT 1 {rest}"),
            None => self.text.clone(),
        };
        Sql {
            text: format!("SELECT COUNT(*) FROM ({rows}) AS matching"),
            values: self.values.clone(),
        }
    }

    pub fn query_scalar<T>(&self) -> sqlx::query::QueryScalar<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        bind_all!(sqlx::query_scalar(&self.text), &self.values)
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        bind_all!(sqlx::query(&self.text), &self.values)
    }
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
