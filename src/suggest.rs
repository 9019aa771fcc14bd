//! "Did you mean" helpers: edit distance and the closest candidate.

/// Optimal-string-alignment distance (Levenshtein plus adjacent
/// transpositions), counted in chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    if n == 0 {
        return m;
    }
    if m == 0 {
        return n;
    }
    // Three rolling rows: i-2, i-1, i.
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

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
        let d = edit_distance(&lower, &c.to_ascii_lowercase());
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
    fn distance_basics() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("verb", "verbs"), 1);
        assert_eq!(edit_distance("groups", "group"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        // A transposition costs one.
        assert_eq!(edit_distance("RequestRecieved", "RequestReceived"), 1);
        assert_eq!(edit_distance("lveel", "level"), 1);
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
