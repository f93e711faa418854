//! The `ingrid` hub binary.
fn main() {}
