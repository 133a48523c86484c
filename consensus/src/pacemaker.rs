//! View timeouts: how long a node waits in a view before giving up on it.
//!
//! The timeout doubles with every view since the last QC (a run of failed
//! leaders), capped, so that after GST some view lasts long enough for an
//! honest leader to gather a QC, and returns to the base as soon as views
//! succeed again.

use crate::messages::View;

/// Longest doubling run; beyond it the cap applies anyway.
const MAX_DOUBLINGS: u32 = 16;

/// Timeout for `view` when the highest QC is for `high_qc_view`.
pub fn view_timeout_ms(base_ms: u64, max_ms: u64, view: View, high_qc_view: View) -> u64 {
    let failed = view
        .saturating_sub(high_qc_view + 1)
        .min(u64::from(MAX_DOUBLINGS)) as u32;
    base_ms.saturating_mul(1u64 << failed).min(max_ms).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failed_view_and_caps() {
        // (view, high_qc_view) -> timeout, base 1000, cap 10_000
        let table = [
            ((5, 4), 1000),
            ((6, 4), 2000),
            ((7, 4), 4000),
            ((8, 4), 8000),
            ((9, 4), 10_000),
            ((500, 4), 10_000),
        ];
        for ((view, qc), expected) in table {
            assert_eq!(
                view_timeout_ms(1000, 10_000, view, qc),
                expected,
                "view {view}"
            );
        }
    }
}
