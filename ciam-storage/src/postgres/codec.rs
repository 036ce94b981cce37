//! Column conversions: the shared SQL codec.

pub(super) use crate::sql::codec::*;
