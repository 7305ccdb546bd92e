//! Shared by `build.rs` and `tests/it/binary.rs` (included with `#[path]`), so both decide alike.

/// Whether the glibc this process runs on has a loader that applies packed relative relocations
/// (it declares `GLIBC_ABI_DT_RELR`: glibc 2.36 and later). `false` when no `libc.so.6` is mapped
/// (not Linux, or not glibc).
pub fn glibc_loads_relr() -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let Some(libc) = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libc.so.6"))
    else {
        return false;
    };
    std::fs::read(libc).is_ok_and(|b| b.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR"))
}
