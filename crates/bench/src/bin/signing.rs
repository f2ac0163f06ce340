//! Access-token signing, ring against aws-lc-rs: `cargo run --release -p oauth-bench --bin
//! signing [-- --seconds N]`. The same keys (PKCS#8 from ring, loaded into both) sign a typical
//! RFC 9068 signing input, one thread, and each library's time per signature is printed (the
//! median of five rounds), for ES256 and EdDSA signing and ES256 verification (introspection's
//! cost), with a verification of each signature so that a broken key load cannot pass for a
//! fast one.

use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

/// About the size of the server's header and claims, base64url-encoded.
fn signing_input() -> Vec<u8> {
    let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"k-2026-12-02T16:00:00Z"}"#;
    let claims = r#"{"iss":"https://auth.example.com","sub":"6b1cbe7e-0d6a-4d8e-9f3e-2a4a6f1c9b10","aud":"https://auth.example.com","client_id":"6b1cbe7e-0d6a-4d8e-9f3e-2a4a6f1c9b10","exp":1796230576,"iat":1796226976,"jti":"f1c0a9f4-2a6c-4d4f-9f65-1f0f2b6b8a11","scope":"admin messaging voice"}"#;
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    format!("{}.{}", b64(header), b64(claims)).into_bytes()
}

/// The median over [`ROUNDS`] rounds of the time one `op` takes, each round running `op` for
/// about `per_round`.
fn time_per_op(per_round: Duration, mut op: impl FnMut()) -> Duration {
    // Warm up, and learn how many calls fill a round.
    let started = Instant::now();
    let mut n: u32 = 0;
    while started.elapsed() < per_round / 10 {
        op();
        n += 1;
    }
    let per_call = started.elapsed() / n.max(1);
    let calls = (per_round.as_nanos() / per_call.as_nanos().max(1)).clamp(1, 10_000_000) as u32;
    let mut rounds: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                op();
            }
            t.elapsed() / calls
        })
        .collect();
    rounds.sort();
    rounds[ROUNDS / 2]
}

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1.0);
    let per_round = Duration::from_secs_f64(seconds / ROUNDS as f64);
    let input = signing_input();
    let ring_rng = ring::rand::SystemRandom::new();
    let aws_rng = aws_lc_rs::rand::SystemRandom::new();

    // ES256.
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring_rng,
    )
    .map_err(|_| anyhow::anyhow!("generating a P-256 key"))?;
    let ring_es = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &ring_rng,
    )
    .map_err(|e| anyhow::anyhow!("ring P-256 key: {e}"))?;
    let aws_es = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
    )
    .map_err(|e| anyhow::anyhow!("aws-lc-rs P-256 key: {e}"))?;
    let public = ring::signature::KeyPair::public_key(&ring_es)
        .as_ref()
        .to_vec();
    let verify_es = |sig: &[u8]| {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
            .verify(&input, sig)
            .map_err(|_| anyhow::anyhow!("an ES256 signature did not verify"))
    };
    let ring_sig = ring_es
        .sign(&ring_rng, &input)
        .map_err(|_| anyhow::anyhow!("ring signing"))?;
    verify_es(ring_sig.as_ref())?;
    let aws_sig = aws_es
        .sign(&aws_rng, &input)
        .map_err(|_| anyhow::anyhow!("aws-lc-rs signing"))?;
    verify_es(aws_sig.as_ref())?;
    let aws_public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        public.clone(),
    );
    aws_public
        .verify(&input, ring_sig.as_ref())
        .map_err(|_| anyhow::anyhow!("aws-lc-rs refused a good ES256 signature"))?;
    let ring_public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public);
    let ring_verify_t = time_per_op(per_round, || {
        let _ = std::hint::black_box(ring_public.verify(&input, ring_sig.as_ref()));
    });
    let aws_verify_t = time_per_op(per_round, || {
        let _ = std::hint::black_box(aws_public.verify(&input, ring_sig.as_ref()));
    });
    let ring_es_t = time_per_op(per_round, || {
        let _ = std::hint::black_box(ring_es.sign(&ring_rng, std::hint::black_box(&input)));
    });
    let aws_es_t = time_per_op(per_round, || {
        let _ = std::hint::black_box(aws_es.sign(&aws_rng, std::hint::black_box(&input)));
    });

    // EdDSA (Ed25519).
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring_rng)
        .map_err(|_| anyhow::anyhow!("generating an Ed25519 key"))?;
    let ring_ed = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("ring Ed25519 key: {e}"))?;
    let aws_ed = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("aws-lc-rs Ed25519 key: {e}"))?;
    let public = ring::signature::KeyPair::public_key(&ring_ed)
        .as_ref()
        .to_vec();
    for sig in [
        ring_ed.sign(&input).as_ref().to_vec(),
        aws_ed.sign(&input).as_ref().to_vec(),
    ] {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
            .verify(&input, &sig)
            .map_err(|_| anyhow::anyhow!("an EdDSA signature did not verify"))?;
    }
    let ring_ed_t = time_per_op(per_round, || {
        std::hint::black_box(ring_ed.sign(std::hint::black_box(&input)));
    });
    let aws_ed_t = time_per_op(per_round, || {
        std::hint::black_box(aws_ed.sign(std::hint::black_box(&input)));
    });

    // RS256 (RSA-2048, PKCS#1 v1.5).
    let aws_rsa = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("generating an RSA key"))?;
    let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&aws_rsa)
        .map_err(|_| anyhow::anyhow!("encoding the RSA key"))?;
    let ring_rsa = ring::signature::RsaKeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("ring RSA key: {e}"))?;
    let modulus = ring_rsa.public().modulus_len();
    let public = ring_rsa.public().as_ref().to_vec();
    let mut ring_sig = vec![0u8; modulus];
    let mut aws_sig = vec![0u8; modulus];
    ring_rsa
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring_rng,
            &input,
            &mut ring_sig,
        )
        .map_err(|_| anyhow::anyhow!("ring RSA signing"))?;
    aws_rsa
        .sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_rng,
            &input,
            &mut aws_sig,
        )
        .map_err(|_| anyhow::anyhow!("aws-lc-rs RSA signing"))?;
    for sig in [&ring_sig, &aws_sig] {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &public,
        )
        .verify(&input, sig)
        .map_err(|_| anyhow::anyhow!("an RS256 signature did not verify"))?;
    }
    let ring_rs_t = time_per_op(per_round, || {
        let _ = std::hint::black_box(ring_rsa.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring_rng,
            std::hint::black_box(&input),
            &mut ring_sig,
        ));
    });
    let aws_rs_t = time_per_op(per_round, || {
        let _ = std::hint::black_box(aws_rsa.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_rng,
            std::hint::black_box(&input),
            &mut aws_sig,
        ));
    });

    println!(
        "signing a {}-byte JWT signing input, one thread, median of {ROUNDS} rounds",
        input.len()
    );
    println!(
        "{:<13} {:>8} {:>13} {:>8}",
        "operation", "ring µs", "aws-lc-rs µs", "ratio"
    );
    for (alg, r, a) in [
        ("ES256", ring_es_t, aws_es_t),
        ("EdDSA", ring_ed_t, aws_ed_t),
        ("RS256", ring_rs_t, aws_rs_t),
        ("ES256 verify", ring_verify_t, aws_verify_t),
    ] {
        let (r, a) = (r.as_secs_f64() * 1e6, a.as_secs_f64() * 1e6);
        println!("{alg:<13} {r:>8.2} {a:>13.2} {:>7.2}x", r / a);
    }
    Ok(())
}
