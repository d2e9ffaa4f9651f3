//! Registry benchmarks (filled in below).

fn main() {}
