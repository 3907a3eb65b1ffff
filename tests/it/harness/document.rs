//! Reading the published host-list document: which host is disabled, its version.

use serde_json::Value;

/// The lab's primary host (vendor alpha).
pub const PRIMARY: &str = "cdn.shop.test";
/// The primary's backup on the same vendor (alpha).
pub const SAME_VENDOR: &str = "cdn-ss.shop.test";
/// The backup on the other vendor (beta).
pub const OTHER_VENDOR: &str = "cdn-bak.shop.test";

/// Whether the document disables `host`.
pub fn disabled(doc: &Value, host: &str) -> bool {
    doc["hostListConfig"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap()["isDisabled"]
        == true
}

pub fn version(doc: &Value) -> i64 {
    doc["configVersion"].as_i64().unwrap()
}

/// Whether the document enables all three hosts.
pub fn all_enabled(doc: &Value) -> bool {
    [PRIMARY, SAME_VENDOR, OTHER_VENDOR]
        .iter()
        .all(|h| !disabled(doc, h))
}
