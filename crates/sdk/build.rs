//! Records the compiler's version for the `X-Stainless-Runtime-Version` header, which the
//! official SDKs fill with their runtime's version (`v20.20.2` for Node, `3.11.7` for Python).

use std::process::Command;

fn main() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // `rustc 1.95.0 (59807616e 2026-04-14)`: the second word. Anything unexpected is `unknown`,
    // never a build failure: the header is informative.
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(1).map(str::to_owned))
        .filter(|v| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TELNYX_OAUTH_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
