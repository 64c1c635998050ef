//! JSON Web Keys (RFC 7517) compiled once into the public keys `ring` verifies with.
//!
//! Only public signing keys are compiled: RSA (`n`, `e`, 2048 to 8192 bits), EC P-256 and
//! P-384 (`x`, `y`) and OKP Ed25519 (`x`). Error messages name the problem, never the key
//! material.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;

use super::policy::Algorithm;

/// A key set as written: each key kept as JSON so that errors can name its index.
pub(super) struct JwkSet {
    pub keys: Vec<serde_json::Value>,
}

impl JwkSet {
    /// Reads `{"keys": [...]}`.
    pub fn parse_value(value: &serde_json::Value) -> Result<JwkSet, String> {
        let keys = value
            .as_object()
            .and_then(|object| object.get("keys"))
            .and_then(|keys| keys.as_array())
            .ok_or_else(|| "write a JSON Web Key Set: {\"keys\": [...]}".to_owned())?;
        Ok(JwkSet { keys: keys.clone() })
    }
}

/// The members of a JWK this module reads; others are ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<serde::de::IgnoredAny>,
}

/// The public key material of a compiled key.
#[derive(Clone)]
pub(super) enum Material {
    Rsa { n: Box<[u8]>, e: Box<[u8]> },
    P256(Box<[u8]>),
    P384(Box<[u8]>),
    Ed25519(Box<[u8]>),
}

impl Material {
    fn kind(&self) -> &'static str {
        match self {
            Material::Rsa { .. } => "an RSA key",
            Material::P256(_) => "an EC P-256 key",
            Material::P384(_) => "an EC P-384 key",
            Material::Ed25519(_) => "an Ed25519 key",
        }
    }

    fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Material::Rsa { .. } => matches!(alg, RS256 | RS384 | RS512 | PS256),
            Material::P256(_) => alg == ES256,
            Material::P384(_) => alg == ES384,
            Material::Ed25519(_) => alg == EdDSA,
        }
    }
}

/// A compiled public key: its `kid`, its optional `alg` restriction and its material.
#[derive(Clone)]
pub(super) struct Key {
    pub kid: Option<Box<str>>,
    alg: Option<Algorithm>,
    material: Material,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.material.kind())
            .finish()
    }
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.material.fits(alg)
    }

    /// Whether `signature` is a valid `alg` signature of `message` under this key. The
    /// caller has checked [`Key::fits`].
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        use Algorithm::*;
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    _ => return false,
                };
                signature::RsaPublicKeyComponents { n: &**n, e: &**e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            Material::P256(point) => {
                alg == ES256
                    && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &**point)
                        .verify(message, signature)
                        .is_ok()
            }
            Material::P384(point) => {
                alg == ES384
                    && UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, &**point)
                        .verify(message, signature)
                        .is_ok()
            }
            Material::Ed25519(x) => {
                alg == EdDSA
                    && UnparsedPublicKey::new(&signature::ED25519, &**x)
                        .verify(message, signature)
                        .is_ok()
            }
        }
    }
}

/// The most keys a key set may hold (inline or fetched).
pub(super) const MAX_KEYS: usize = 64;

fn b64(member: &str, value: Option<&String>) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("the key has no `{member}`"))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| format!("`{member}` is not base64url without padding"))
}

fn fixed(member: &str, value: Option<&String>, len: usize) -> Result<Box<[u8]>, String> {
    let bytes = b64(member, value)?;
    if bytes.len() != len {
        return Err(format!("`{member}` must be {len} bytes"));
    }
    Ok(bytes.into_boxed_slice())
}

/// What a JWK is, parsed and compiled; `private` tells whether it holds a `d` member.
struct Parsed {
    key: Key,
    private: bool,
    use_: Option<String>,
}

fn parse(value: &serde_json::Value) -> Result<Parsed, String> {
    let raw = RawJwk::deserialize(value)
        .map_err(|_| "not a JSON Web Key: an object with `kty` and its members".to_owned())?;
    let alg =
        match raw.alg.as_deref() {
            None => None,
            Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| {
                "the key's `alg` is not a supported signature algorithm".to_owned()
            })?),
        };
    let material = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => {
            let n = b64("n", raw.n.as_ref())?;
            let e = b64("e", raw.e.as_ref())?;
            let n = strip_zeros(&n);
            let e = strip_zeros(&e);
            let bits = n.len() * 8 - n.first().map_or(8, |top| top.leading_zeros() as usize);
            if !(2048..=8192).contains(&bits) {
                return Err(format!(
                    "the RSA modulus has {bits} bits; 2048 to 8192 are accepted"
                ));
            }
            // ring takes odd exponents from 3 to 2^33 - 1.
            let exponent = e
                .iter()
                .fold(0u64, |value, &byte| value << 8 | u64::from(byte));
            if e.len() > 4 || exponent < 3 || exponent % 2 == 0 {
                return Err("the RSA exponent `e` is out of range".to_owned());
            }
            Material::Rsa {
                n: n.into(),
                e: e.into(),
            }
        }
        ("EC", Some("P-256")) => Material::P256(point(&raw, 32)?),
        ("EC", Some("P-384")) => Material::P384(point(&raw, 48)?),
        ("EC", _) => return Err("only EC curves P-256 and P-384 are supported".to_owned()),
        ("OKP", Some("Ed25519")) => Material::Ed25519(fixed("x", raw.x.as_ref(), 32)?),
        ("OKP", _) => return Err("only the OKP curve Ed25519 is supported".to_owned()),
        ("oct", _) => {
            return Err(
                "symmetric (oct) keys are not taken from a key set; HMAC policies use `secret`"
                    .to_owned(),
            );
        }
        _ => return Err("`kty` must be RSA, EC or OKP".to_owned()),
    };
    if let Some(alg) = alg
        && !material.fits(alg)
    {
        return Err(format!(
            "{} cannot be used with its `alg` {alg}",
            material.kind()
        ));
    }
    Ok(Parsed {
        key: Key {
            kid: raw.kid.map(String::into_boxed_str),
            alg,
            material,
        },
        private: raw.d.is_some(),
        use_: raw.use_,
    })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn point(raw: &RawJwk, len: usize) -> Result<Box<[u8]>, String> {
    let x = fixed("x", raw.x.as_ref(), len)?;
    let y = fixed("y", raw.y.as_ref(), len)?;
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point.into_boxed_slice())
}

/// Checks one key of an inline set against the policy's algorithms.
pub(super) fn check_inline(
    value: &serde_json::Value,
    algorithms: &[Algorithm],
) -> Result<(), String> {
    let parsed = parse(value)?;
    if parsed.private {
        return Err("the key holds private material (`d`); give only the public key".to_owned());
    }
    if parsed.use_.as_deref().is_some_and(|use_| use_ != "sig") {
        return Err("the key's `use` must be `sig`".to_owned());
    }
    if !algorithms.iter().any(|&alg| parsed.key.fits(alg)) {
        let names: Vec<&str> = algorithms.iter().map(|alg| alg.as_str()).collect();
        return Err(format!(
            "{} is not usable with the algorithms {}",
            parsed.key.material.kind(),
            names.join(", ")
        ));
    }
    Ok(())
}

/// Compiles an inline set strictly: every key must be usable (see
/// [`JwtPolicy::validate`](super::JwtPolicy::validate)); the error names the key's index.
pub(super) fn compile_inline(
    value: &serde_json::Value,
    algorithms: &[Algorithm],
) -> Result<Vec<Key>, String> {
    let set = JwkSet::parse_value(value)?;
    if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
        return Err(format!("list 1 to {MAX_KEYS} keys"));
    }
    let mut keys = Vec::with_capacity(set.keys.len());
    for (index, value) in set.keys.iter().enumerate() {
        check_inline(value, algorithms).map_err(|message| format!("keys[{index}]: {message}"))?;
        keys.push(
            parse(value)
                .map_err(|message| format!("keys[{index}]: {message}"))?
                .key,
        );
    }
    Ok(keys)
}

/// Compiles a fetched set leniently: keys that are not for signing, or of a kind the
/// policy's algorithms do not cover, are skipped (a provider's set often holds others).
/// Fails when the document is not a key set or no key is usable.
pub(super) fn compile_fetched(body: &[u8], algorithms: &[Algorithm]) -> Result<Vec<Key>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let set = JwkSet::parse_value(&value)?;
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter_map(|value| parse(value).ok())
        .filter(|parsed| parsed.use_.as_deref().is_none_or(|use_| use_ == "sig"))
        .map(|parsed| parsed.key)
        .filter(|key| algorithms.iter().any(|&alg| key.fits(alg)))
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err("the key set holds no key usable with the policy's algorithms".to_owned());
    }
    Ok(keys)
}
