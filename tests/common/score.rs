//! Precision and recall per class, for the classification tests (`tests/automatic.rs`,
//! `tests/corpus.rs` check 5): printed, never asserted (each test asserts its own rule).

/// One table line per class of `classes` (then any other class seen), from `(expected,
/// got)` pairs: class, expected, got, right, precision (right / got), recall (right /
/// expected).
pub fn precision_recall(pairs: &[(&str, &str)], classes: &[&str]) -> Vec<String> {
    let mut all: Vec<&str> = classes.to_vec();
    for (want, got) in pairs {
        for c in [*want, *got] {
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    let ratio = |n: usize, d: usize| {
        if d == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", 100.0 * n as f64 / d as f64)
        }
    };
    let mut out = vec![format!(
        "{:<12} {:>8} {:>8} {:>8} {:>10} {:>8}",
        "class", "expected", "got", "right", "precision", "recall"
    )];
    for class in all {
        let expected = pairs.iter().filter(|(w, _)| *w == class).count();
        let got = pairs.iter().filter(|(_, g)| *g == class).count();
        let right = pairs
            .iter()
            .filter(|(w, g)| *w == class && *g == class)
            .count();
        out.push(format!(
            "{class:<12} {expected:>8} {got:>8} {right:>8} {:>10} {:>8}",
            ratio(right, got),
            ratio(right, expected)
        ));
    }
    out
}
