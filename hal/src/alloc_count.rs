//! A counting global allocator for tests and benchmarks: it proves that a path allocates
//! nothing (STYLE: the hot path never allocates). It forwards every call to the system
//! allocator and counts allocations (and reallocations) per thread, so a test counts
//! only its own thread's. Not used by the daemon.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // `const`: reading it never allocates (no lazy initialisation).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// Install with `#[global_allocator] static A: Counting = Counting;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

impl Counting {
    /// Allocations and reallocations made by this thread so far.
    pub fn count() -> u64 {
        ALLOCS.with(Cell::get)
    }
}

fn bump() {
    // A thread being torn down has no counter left: nothing to count there.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// GlobalAlloc contract; the only addition is a thread-local counter that does not
// allocate (const-initialised).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's `layout` is passed on as the contract requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
