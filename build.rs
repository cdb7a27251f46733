//! The dev profile's `weaver` is linked position-dependent (`-no-pie`): the tests start it
//! thousands of times, and as a position-independent executable of its size most of a short
//! command's start-up is the dynamic loader relocating its 4 MB of GOT and vtables
//! (`weaver --version`: 6.4 ms of CPU and 1,400 page faults as a PIE, 2.8 ms and 410 not).
//! Release builds (`cargo install`, the image) stay position-independent, for ASLR.
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let debug = std::env::var("PROFILE").is_ok_and(|profile| profile == "debug");
    if linux && debug {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
