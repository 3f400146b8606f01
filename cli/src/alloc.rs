//! The tool's allocator: mimalloc. Records are built and dropped a page at a time, mostly on
//! another thread than the one that built them; glibc's malloc spent a quarter of an
//! enumeration's CPU on that and kept more memory per worker thread.
//!
//! mimalloc gives pages back to the system a second after they empty, its default: asking for
//! sooner (1 ms) saved 2-3 MB of a million-session enumeration's 15-18 MB and cost 13-15 % of
//! its CPU, the pages being faulted in again a moment later (docs/design.md).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
