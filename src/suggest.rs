//! "Did you mean": the closest candidate to a mistyped word, for the policy
//! decoder, the policy lints and the configuration. The edit distance is
//! strsim's optimal string alignment (Levenshtein plus adjacent
//! transpositions, counted in chars), so `RequestRecieved` is one edit from
//! `RequestReceived`.

/// The largest distance at which `candidate` is still offered for a word
/// of `len` chars: 1 for short words, about a third of the length beyond.
fn threshold(len: usize) -> usize {
    match len {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    }
}

/// The candidate closest to `word`: an exact case-insensitive match first,
/// then the smallest edit distance (case-insensitive) within the threshold.
/// Ties go to the earlier candidate.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    if let Some(c) = candidates.iter().find(|c| c.to_ascii_lowercase() == lower) {
        return Some(c);
    }
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = strsim::osa_distance(&lower, &c.to_ascii_lowercase());
        if d <= threshold(word.chars().count().max(c.chars().count()))
            && best.is_none_or(|(bd, _)| d < bd)
        {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpositions_and_config_keys() {
        // A transposition is one edit (optimal string alignment), as a
        // Levenshtein distance would count two.
        assert_eq!(closest("lveel", &["level", "users"]), Some("level"));
        let keys = ["maxage", "maxbackup", "maxsize", "compress", "mode"];
        assert_eq!(closest("maxgae", &keys), Some("maxage"));
        assert_eq!(closest("max_size", &keys), Some("maxsize"));
        assert_eq!(closest("path", &keys), None);
    }

    #[test]
    fn closest_prefers_case_insensitive_match() {
        let c = ["nonResourceURLs", "namespaces"];
        assert_eq!(closest("nonresourceurls", &c), Some("nonResourceURLs"));
        assert_eq!(closest("NonResourceUrls", &c), Some("nonResourceURLs"));
    }

    #[test]
    fn closest_by_distance_within_threshold() {
        let fields = ["level", "users", "userGroups", "verbs", "resources"];
        assert_eq!(closest("levl", &fields), Some("level"));
        assert_eq!(closest("usrGroups", &fields), Some("userGroups"));
        assert_eq!(closest("resorces", &fields), Some("resources"));
        assert_eq!(closest("zzzzzz", &fields), None);
        assert_eq!(closest("x", &fields), None);
    }

    #[test]
    fn closest_levels_and_stages() {
        let levels = ["None", "Metadata", "Request", "RequestResponse"];
        assert_eq!(closest("metadata", &levels), Some("Metadata"));
        assert_eq!(closest("Everything", &levels), None);
        assert_eq!(closest("RequestResponce", &levels), Some("RequestResponse"));
        let stages = [
            "RequestReceived",
            "ResponseStarted",
            "ResponseComplete",
            "Panic",
        ];
        assert_eq!(closest("RequestRecieved", &stages), Some("RequestReceived"));
        assert_eq!(closest("Bogus", &stages), None);
    }
}
