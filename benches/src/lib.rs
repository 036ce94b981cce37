//! criterion benchmarks for ciam, the storage load tool and the performance harness; see
//! benches/README.md.

use std::alloc::System;

use stats_alloc::{Region, StatsAlloc};

/// Heap allocations per call of `op`, averaged over `n` calls, counted by the benchmark's
/// instrumented global allocator (declare it in the benchmark binary:
/// `#[global_allocator] static GLOBAL: &StatsAlloc<System> = &stats_alloc::INSTRUMENTED_SYSTEM;`).
///
/// Counts every allocation made on any thread while `op` runs, so run it with nothing else
/// going on in the process (criterion's own measurement is over by then).
pub fn allocations_per_op(alloc: &'static StatsAlloc<System>, n: u32, mut op: impl FnMut()) -> f64 {
    op();
    let region = Region::new(alloc);
    for _ in 0..n {
        op();
    }
    let stats = region.change();
    stats.allocations as f64 / f64::from(n.max(1))
}
