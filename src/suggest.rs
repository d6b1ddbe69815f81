//! "Did you mean": the known name nearest to a misspelt one, as cargo and mix suggest it.

/// The name of `known` nearest to `typed`, if one is near enough to be what was meant: at most
/// a third of its characters (at least one) added, removed, replaced or swapped with a
/// neighbour, not counting a dotted prefix both share (`Demo.` of `Demo.Nope` and `Demo.Money`).
/// The first of equally near names wins; `typed` itself is never suggested.
pub fn nearest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .filter(|k| *k != typed)
        .filter_map(|k| {
            let shared = shared_prefix(typed, k);
            let (typed, other) = (&typed[shared..], &k[shared..]);
            let distance = strsim::damerau_levenshtein(typed, other);
            (distance <= (typed.chars().count() / 3).max(1)).then_some((distance, k))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// The length of the prefix, up to and with a `.`, that `a` and `b` share.
fn shared_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .filter(|((_, x), _)| *x == '.')
        .last()
        .map_or(0, |((i, _), _)| i + 1)
}

/// ` (did you mean X?)`, or nothing when no name of `known` is near `typed`.
pub fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    nearest(typed, known).map_or_else(String::new, |k| format!(" (did you mean {k}?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested_and_far_ones_not() {
        let known = ["Demo.Worker", "Demo.Money", "Demo.Smoke"];
        assert_eq!(nearest("Demo.Wroker", known), Some("Demo.Worker"));
        assert_eq!(nearest("demo.worker", known), Some("Demo.Worker"));
        assert_eq!(nearest("Demo.Nope", known), None);
        assert_eq!(nearest("Demo.Worker", known), None, "not itself");
        assert_eq!(nearest("web1", ["web-1", "web-2", "db-1"]), Some("web-1"));
        assert_eq!(nearest("x", ["y"]), Some("y"), "one edit is always near");
        assert_eq!(
            did_you_mean("elixr", ["elixir", "entry"]),
            " (did you mean elixir?)"
        );
        assert_eq!(did_you_mean("zzz", ["elixir"]), "");
        assert_eq!(shared_prefix("Demo.A.b", "Demo.A.c"), 7);
        assert_eq!(shared_prefix("Demo", "Demo.A"), 0);
    }
}
