//! Helpers for the unit tests (compiled only with them).

/// Every string of at most `max` symbols of `alphabet`, the empty one
/// included, shortest first: the inputs of the exhaustive tests that check
/// a matcher against a plainly correct reference.
pub(crate) fn strings(alphabet: &[&str], max: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut layer = vec![String::new()];
    for _ in 0..max {
        layer = layer
            .iter()
            .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
            .collect();
        out.extend(layer.iter().cloned());
    }
    out
}
