//! criterion benchmarks for ciam; see benches/README.md.
