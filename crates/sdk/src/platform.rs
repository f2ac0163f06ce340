//! The platform headers, named as the official SDKs name them (`X-Stainless-OS: Linux`,
//! `X-Stainless-Arch: x64`), so that a server or proxy that reads them sees one vocabulary.

use std::sync::LazyLock;

use reqwest::header::HeaderValue;

/// `X-Stainless-OS`, `X-Stainless-Arch`, `X-Stainless-Runtime` and `-Runtime-Version`, built
/// once per process.
pub(crate) static HEADERS: LazyLock<[(&str, HeaderValue); 4]> = LazyLock::new(|| {
    [
        ("x-stainless-os", value(os_name(std::env::consts::OS))),
        ("x-stainless-arch", value(arch_name(std::env::consts::ARCH))),
        ("x-stainless-runtime", HeaderValue::from_static("rust")),
        (
            "x-stainless-runtime-version",
            value(env!("TELNYX_OAUTH_RUSTC_VERSION").to_owned()),
        ),
    ]
});

fn value(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Rust's name of an operating system (`std::env::consts::OS`) in the official SDKs' words.
pub(crate) fn os_name(os: &str) -> String {
    match os {
        "linux" => "Linux",
        "macos" => "MacOS",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        "openbsd" => "OpenBSD",
        "android" => "Android",
        "ios" => "iOS",
        "" => "Unknown",
        other => return format!("Other:{other}"),
    }
    .to_owned()
}

/// Rust's name of an architecture (`std::env::consts::ARCH`) in the official SDKs' words.
pub(crate) fn arch_name(arch: &str) -> String {
    match arch {
        "x86_64" => "x64",
        "x86" => "x32",
        "aarch64" => "arm64",
        "arm" => "arm",
        "" => "unknown",
        other => return format!("other:{other}"),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_official_sdks() {
        assert_eq!(os_name("linux"), "Linux");
        assert_eq!(os_name("macos"), "MacOS");
        assert_eq!(os_name("windows"), "Windows");
        assert_eq!(os_name("ios"), "iOS");
        assert_eq!(os_name("netbsd"), "Other:netbsd");
        assert_eq!(os_name(""), "Unknown");
        assert_eq!(arch_name("x86_64"), "x64");
        assert_eq!(arch_name("x86"), "x32");
        assert_eq!(arch_name("aarch64"), "arm64");
        assert_eq!(arch_name("arm"), "arm");
        assert_eq!(arch_name("riscv64"), "other:riscv64");
        assert_eq!(arch_name(""), "unknown");
    }

    #[test]
    fn the_runtime_version_is_the_compilers() {
        let version = env!("TELNYX_OAUTH_RUSTC_VERSION");
        assert!(
            version == "unknown" || version.starts_with(|c: char| c.is_ascii_digit()),
            "{version}"
        );
        let runtime = &HEADERS[3];
        assert_eq!(runtime.0, "x-stainless-runtime-version");
        assert_eq!(runtime.1.to_str().unwrap(), version);
    }
}
