//! Reading kubectl's human-readable output: table columns, rows, and
//! `-o name` lists.

/// Columns of a kubectl table line (kubectl pads columns with 3 spaces;
/// single spaces occur inside headers such as `NOMINATED NODE`).
pub fn columns(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// The header columns of a kubectl table.
pub fn header(table: &str) -> Vec<String> {
    columns(table.lines().next().unwrap_or_default())
}

/// The data row of `name` in a kubectl table.
pub fn row<'a>(table: &'a str, name: &str) -> Option<&'a str> {
    table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(name))
}

/// True if `expected` occur in `actual` in this order (servers may add
/// columns that newer Kubernetes versions print, e.g. `VOLUMEATTRIBUTESCLASS`).
pub fn in_order(actual: &[String], expected: &[&str]) -> bool {
    let mut it = actual.iter();
    expected.iter().all(|e| it.any(|a| a == e))
}

/// The words of an output (e.g. `-o name`), sorted.
pub fn names(output: &str) -> Vec<String> {
    let mut v: Vec<String> = output.split_whitespace().map(String::from).collect();
    v.sort();
    v
}
