//! Link flags for the `waops` binary only (no dependency is rebuilt for them).

use std::path::Path;
use std::process::Command;

fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/order.txt");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // Relative relocations packed as DT_RELR (glibc 2.36+, binutils 2.38+; the
    // container's Debian bookworm has both): the 1.9 MB `.rela.dyn` table the
    // loader reads at every start becomes a few kilobytes, and the executable
    // stays position-independent (ASLR kept). Measured in docs/benchmarks.md.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");

    // Release builds place the functions that start-up and an idle server run
    // next to each other, in the order they first run (link/order.txt, made by
    // scripts/code-order.sh). The kernel maps code 64 KiB at a time, so scattered
    // start-up code kept 7-8 MB of the binary resident; packed, 3.5 MB. Only
    // LLD takes the flag: rustc links x86_64 Linux with its own LLD since 1.90
    // unless RUSTFLAGS choose a linker. A name the build no longer has is skipped.
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/order.txt");
    if var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && !chooses_linker(&var("CARGO_ENCODED_RUSTFLAGS"))
        && rustc_minor() >= Some(90)
        && order.is_file()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            order.display()
        );
    }
}

/// Whether RUSTFLAGS (cargo's encoding: flags joined by 0x1f) pick the linker
/// or how it is called, so that it may not be rustc's LLD. Other flags that
/// merely contain "link" (`-C link-dead-code`, `-C link-arg=...`) leave LLD.
fn chooses_linker(encoded: &str) -> bool {
    encoded.split('\x1f').any(|flag| {
        [
            "linker=",
            "linker-flavor",
            "linker-features",
            "link-self-contained",
            "fuse-ld",
        ]
        .iter()
        .any(|choice| flag.contains(choice))
    })
}

/// The minor version of the rustc building this crate (`1.N.x`).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
