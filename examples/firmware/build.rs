//! Puts `memory.x` where the linker finds it (cortex-m-rt's `link.x` includes it), and adds
//! defmt's linker script to the firmware binary when the `defmt` feature is on.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR")?);
    fs::copy("memory.x", out.join("memory.x"))?;
    println!("cargo:rustc-link-search={}", out.display());
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        // Only the firmware logs through defmt; the size and bench binaries never do.
        println!("cargo:rustc-link-arg-bin=posthog-firmware=-Tdefmt.x");
    }
    // The TLS root the firmware trusts (feature `tls`): the CA of `serve --tls`, or the
    // throwaway one beside this file.
    let root =
        env::var_os("PH_TLS_ROOT").map_or_else(|| PathBuf::from("tls-root.der"), PathBuf::from);
    fs::copy(&root, out.join("tls-root.der"))?;
    println!("cargo:rerun-if-env-changed=PH_TLS_ROOT");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
