//! The built-in list of common passwords (see the header of `common-passwords.txt`).

use std::collections::HashSet;
use std::sync::LazyLock;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Whether `lowercase` (already NFKC-normalised and lowercased) is on the built-in list.
pub(crate) fn is_common(lowercase: &str) -> bool {
    COMMON.contains(lowercase)
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_has_at_least_3000_entries_of_8_or_more_chars() {
        assert!(super::COMMON.len() >= 3000);
        assert!(super::COMMON.iter().all(|p| p.chars().count() >= 8));
        assert!(super::is_common("password"));
    }
}
