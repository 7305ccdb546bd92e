//! What the built `lever` binary itself is made of (the release profile's choices that the
//! idle resident set depends on, docs/PERFORMANCE.md).

/// `(type, size)` of every section of an ELF64 little-endian file.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn elf_sections(elf: &[u8]) -> Vec<(u32, u64)> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    assert_eq!(elf[5], 1, "not a little-endian ELF file");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (shoff, shentsize, shnum) = (u64_at(0x28) as usize, u16_at(0x3A), u16_at(0x3C));
    (0..shnum)
        .map(|i| {
            let h = shoff + i * shentsize;
            (u32_at(h + 4), u64_at(h + 0x20))
        })
        .collect()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[path = "../../build/glibc.rs"]
mod glibc;

/// The loader relocates every pointer of a position-independent binary at start-up; packed
/// (RELR, build.rs) the relative ones take a few kilobytes instead of 2.2 MB that the loader
/// reads and that stay resident. Against an older glibc, whose loader would ignore them, they
/// must not be packed (the binary would crash at start).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_binary_packs_its_relative_relocations_where_the_loader_applies_them() {
    const SHT_RELA: u32 = 4;
    const SHT_RELR: u32 = 19;
    let elf = std::fs::read(env!("CARGO_BIN_EXE_lever")).unwrap();
    let sections = elf_sections(&elf);
    let size_of = |kind: u32| -> u64 { sections.iter().filter(|s| s.0 == kind).map(|s| s.1).sum() };
    let (relr, rela) = (size_of(SHT_RELR), size_of(SHT_RELA));
    // The same check as build.rs: what this process's glibc loader applies.
    if glibc::glibc_loads_relr() {
        assert!(
            relr > 0,
            "no packed relative relocations (SHT_RELR) in the binary"
        );
        assert!(
            rela < 256 * 1024,
            "{rela} bytes of RELA relocations: the relative ones are not packed"
        );
    } else {
        assert_eq!(
            relr, 0,
            "packed relocations that this glibc's loader ignores"
        );
    }
}
