//! RS256 tokens for `bench/auth.sh`, signed with the test key of `src/auth/testdata/`.
//!
//! ```text
//! cargo run --release --example jwt_tokens -- N [--kid KID] [--issuer ISS] [--audience AUD] [--threads T]
//! cargo run --release --example jwt_tokens -- --jwk [--kid KID]
//! ```
//! The first form prints N tokens, one per line: header `{"alg":"RS256","typ":"JWT","kid":KID}`,
//! claims `iss`, `aud`, `sub` ("bench-client"), `iat` (now), `exp` (an hour ahead) and a `jti`
//! distinct for each token (a per-run random prefix and the token's number), so no two are
//! equal. Signing is RSA-2048 (~1 ms a token), spread over T threads (default 1). The second
//! form prints the public JWK with the `kid` added, the key set a policy needs to accept them.
//! Defaults: kid "bench", issuer "https://bench.example/", audience "bench".

use std::io::{BufWriter, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, RsaKeyPair};
use serde_json::{Value, json};

struct Options {
    count: usize,
    jwk: bool,
    kid: String,
    issuer: String,
    audience: String,
    threads: usize,
}

fn usage(message: &str) -> ! {
    eprintln!(
        "{message}\nusage: jwt_tokens N [--kid KID] [--issuer ISS] [--audience AUD] [--threads T]\n       jwt_tokens --jwk [--kid KID]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut options = Options {
        count: 0,
        jwk: false,
        kid: "bench".into(),
        issuer: "https://bench.example/".into(),
        audience: "bench".into(),
        threads: 1,
    };
    let mut count = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--jwk" => options.jwk = true,
            "--kid" => options.kid = value("--kid"),
            "--issuer" => options.issuer = value("--issuer"),
            "--audience" => options.audience = value("--audience"),
            "--threads" => {
                options.threads = value("--threads")
                    .parse()
                    .ok()
                    .filter(|&t| t > 0)
                    .unwrap_or_else(|| usage("--threads is a positive number"));
            }
            _ => {
                count = Some(
                    arg.parse()
                        .unwrap_or_else(|_| usage(&format!("unexpected argument {arg:?}"))),
                )
            }
        }
    }
    match (options.jwk, count) {
        (true, None) => {}
        (false, Some(n)) => options.count = n,
        (true, Some(_)) => usage("--jwk takes no N"),
        (false, None) => usage("N is required"),
    }
    options
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn main() {
    let options = options();
    if options.jwk {
        let mut jwk: Value =
            serde_json::from_str(include_str!("../src/auth/testdata/rsa2048.pub.json"))
                .expect("RSA JWK");
        jwk["kid"] = json!(options.kid);
        println!("{jwk}");
        return;
    }
    let key = RsaKeyPair::from_pkcs8(include_bytes!("../src/auth/testdata/rsa2048.pk8"))
        .expect("test RSA key");
    let rng = SystemRandom::new();
    let mut run = [0u8; 6];
    rng.fill(&mut run).expect("random");
    let run = b64(&run);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = b64(json!({"alg": "RS256", "typ": "JWT", "kid": options.kid})
        .to_string()
        .as_bytes());
    let sign = |index: usize| {
        let claims = json!({
            "iss": options.issuer,
            "aud": options.audience,
            "sub": "bench-client",
            "iat": now,
            "exp": now + 3600,
            "jti": format!("{run}-{index}"),
        });
        let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &rng,
            signed.as_bytes(),
            &mut signature,
        )
        .expect("sign");
        format!("{signed}.{}\n", b64(&signature))
    };
    // Each thread signs a contiguous range; the ranges are written in order.
    let per_thread = options.count.div_ceil(options.threads).max(1);
    let chunks: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.count)
            .step_by(per_thread)
            .map(|start| {
                let end = (start + per_thread).min(options.count);
                let sign = &sign;
                scope.spawn(move || (start..end).map(sign).collect::<String>())
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("signing thread"))
            .collect()
    });
    let mut out = BufWriter::new(std::io::stdout().lock());
    for chunk in chunks {
        out.write_all(chunk.as_bytes()).expect("write");
    }
    out.flush().expect("write");
}
