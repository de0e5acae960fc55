//! Process-wide memory settings, applied before any thread starts.

/// Caps glibc's malloc arenas at two. By default glibc gives busy threads arenas of their
/// own (up to eight per core); under the server's tokio workers, blocking pool and SQLite
/// threads they fragment, and the `memory` benchmark's peak RSS went from 118 MiB to 247 MiB
/// without this. Call first thing in `main`, before the runtime starts.
/// An explicit `MALLOC_ARENA_MAX` in the environment wins (glibc reads it itself).
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
