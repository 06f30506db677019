//! Link flags for the `waops` binary only (no dependency is rebuilt for them).

fn main() {
    // Relative relocations packed as DT_RELR (glibc 2.36+, binutils 2.38+; the
    // container's Debian bookworm has both): the 1.9 MB `.rela.dyn` table the
    // loader reads at every start becomes a few kilobytes, and the executable
    // stays position-independent (ASLR kept). Measured in docs/benchmarks.md.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
