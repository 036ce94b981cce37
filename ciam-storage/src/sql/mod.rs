//! What the SQL backends (SQLite, PostgreSQL) share: column codecs and row decoding.

pub(crate) mod codec;
pub(crate) mod rows;
