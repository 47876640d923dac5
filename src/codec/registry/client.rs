//! HTTP to a Confluent-compatible Schema Registry: a schema by id, and registering (or
//! looking up) a schema under a subject. Blocking, as the consumer loop is, with a timeout
//! on every request. Credentials are sent, never logged: the URL is shown without them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde::Deserialize;

use crate::error::{Error, Result};

/// How to reach the registry: the URL, credentials and TLS material (contents already read
/// from their files or the environment by the caller).
#[derive(Clone, Default)]
pub struct RegistrySettings {
    /// Base URL, e.g. `http://registry:8081` or Apicurio's `…/apis/ccompat/v7`. User info in
    /// the URL is taken as basic-auth credentials.
    pub url: String,
    /// Basic-auth user and password.
    pub basic_auth: Option<(String, String)>,
    /// PEM certificates to trust besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and PKCS#8 key, for mutual TLS.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &redacted(&self.url))
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity_pem", &self.identity_pem.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a request failed, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// Unreachable, timed out, overloaded or failing (5xx, 429): worth asking again later.
    Unavailable(String),
    /// Refused for good (401, 403, 409, 422, other 4xx, an unreadable answer): asking again
    /// cannot help.
    Refused(String),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Unavailable(m) => write!(f, "unavailable: {m}"),
            RegistryError::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

/// What the registry said about a schema id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The schema's text (Avro JSON).
    Found(String),
    /// The registry does not know the id, or holds a schema driftwood cannot read (not Avro).
    Unknown(String),
}

/// A client of one registry.
#[derive(Clone)]
pub struct RegistryClient {
    http: Client,
    /// The URL without credentials: the one requests are made to and errors show.
    base: String,
    basic_auth: Option<(String, String)>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("user", &self.basic_auth.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SchemaById {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

impl RegistryClient {
    /// A client for `settings`; fails on a malformed URL or TLS material. Connects to
    /// nothing yet. The blocking client runs a runtime of its own: build it outside async code.
    pub fn new(settings: &RegistrySettings) -> Result<Self> {
        let (http, base, basic_auth) = Self::prepare(settings)?;
        let tls = |m: String| Error::Config(format!("schema registry TLS: {m}"));
        Ok(RegistryClient {
            http: http.build().map_err(|e| tls(e.to_string()))?,
            base,
            basic_auth,
        })
    }

    /// Checks `settings` as [`RegistryClient::new`] would, without building a client (safe
    /// in async code).
    pub fn check(settings: &RegistrySettings) -> Result<()> {
        Self::prepare(settings).map(drop)
    }

    /// The client's builder, the base URL without credentials, and the credentials.
    #[allow(clippy::type_complexity)]
    fn prepare(
        settings: &RegistrySettings,
    ) -> Result<(
        reqwest::blocking::ClientBuilder,
        String,
        Option<(String, String)>,
    )> {
        let bad = |m: String| Error::Config(format!("--schema-registry-url: {m}"));
        let url = reqwest::Url::parse(settings.url.trim_end_matches('/'))
            .map_err(|e| bad(format!("{e} in {:?}", redacted(&settings.url))))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!(
                "{} is not http or https",
                redacted(&settings.url)
            )));
        }
        let from_url = (!url.username().is_empty()).then(|| {
            let password = url.password().unwrap_or_default();
            (decode_userinfo(url.username()), decode_userinfo(password))
        });
        let mut base = url.clone();
        // Sent as a header instead, so that the URL can be shown in errors.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let mut http = Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("driftwood/", env!("CARGO_PKG_VERSION")));
        let tls = |m: String| Error::Config(format!("schema registry TLS: {m}"));
        if let Some(pem) = &settings.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| tls(e.to_string()))?;
            if certs.is_empty() {
                return Err(tls("the CA file holds no PEM certificate".into()));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &settings.identity_pem {
            let identity =
                reqwest::Identity::from_pkcs8_pem(cert, key).map_err(|e| tls(e.to_string()))?;
            http = http.identity(identity);
        }
        let base = base.as_str().trim_end_matches('/').to_string();
        Ok((http, base, settings.basic_auth.clone().or(from_url)))
    }

    /// The URL without credentials, for logs and errors.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn request(&self, builder: RequestBuilder) -> RequestBuilder {
        let builder = builder.header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        match &self.basic_auth {
            Some((user, password)) => builder.basic_auth(user, Some(password)),
            None => builder,
        }
    }

    /// The schema registered under `id` (`GET /schemas/ids/{id}`).
    pub fn schema_by_id(&self, id: u32) -> std::result::Result<Lookup, RegistryError> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let response = send(self.request(self.http.get(&url)))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(Lookup::Unknown(format!(
                "the schema registry at {} has no schema id {id}",
                self.base
            )));
        }
        let body: SchemaById = read_json(response, &format!("schema id {id}"))?;
        match body.schema_type.as_deref() {
            None | Some("AVRO") => Ok(Lookup::Found(body.schema)),
            Some(other) => Ok(Lookup::Unknown(format!(
                "schema id {id} is a {other} schema, not Avro"
            ))),
        }
    }

    /// Registers `schema` under `subject`, or finds it registered already
    /// (`POST /subjects/{subject}/versions`), and returns its id. An incompatible schema is
    /// refused with the registry's reason.
    ///
    /// Instances of a group that start together register the same subject at once, and
    /// Apicurio answers all but one "409: already exists" while the subject is new: a 409 is
    /// followed by a lookup of the schema under the subject (`POST /subjects/{subject}`),
    /// whose id is the answer where it is registered. Where it is not yet, an "already
    /// exists" is worth asking again (the subject is still being made); any other 409 stands.
    pub fn register(&self, subject: &str, schema: &str) -> std::result::Result<u32, RegistryError> {
        let registered = self.post_schema(&format!("/subjects/{subject}/versions"), schema)?;
        let conflict = registered.status() == StatusCode::CONFLICT;
        let answer = read_json::<Registered>(registered, &format!("registering under {subject}"));
        if !conflict {
            return Ok(answer?.id);
        }
        let found = self.post_schema(&format!("/subjects/{subject}"), schema)?;
        if found.status() == StatusCode::NOT_FOUND {
            return answer.map(|r| r.id).map_err(still_being_made);
        }
        Ok(read_json::<Registered>(found, &format!("looking {subject} up"))?.id)
    }

    /// The registry's answer to `schema` posted to `path`.
    fn post_schema(
        &self,
        path: &str,
        schema: &str,
    ) -> std::result::Result<reqwest::blocking::Response, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let request = (self.http.post(format!("{}{path}", self.base)))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(body);
        send(self.request(request))
    }
}

/// A 409 "already exists" for a subject that holds no such schema yet is Apicurio's answer
/// while a registration of the new subject is still being made (seen with one instance
/// registering its outputs one after another): asking again finds the schema, or registers
/// it as a version. Any other refusal (a schema the subject's compatibility rule refuses)
/// stands.
fn still_being_made(e: RegistryError) -> RegistryError {
    match e {
        RegistryError::Refused(m) if m.contains("already exists") => RegistryError::Unavailable(m),
        e => e,
    }
}

fn send(
    request: RequestBuilder,
) -> std::result::Result<reqwest::blocking::Response, RegistryError> {
    request.send().map_err(|e| {
        // Connection refused, DNS, timeouts: all may pass; a bad certificate will not, but
        // reqwest does not tell them apart reliably, and readiness says what happened.
        RegistryError::Unavailable(without_url(&e))
    })
}

/// The body as `T` for a 2xx answer; otherwise the status, classified, with the registry's
/// message.
fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::blocking::Response,
    what: &str,
) -> std::result::Result<T, RegistryError> {
    let status = response.status();
    let text = response
        .text()
        .map_err(|e| RegistryError::Unavailable(without_url(&e)))?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| {
            RegistryError::Refused(format!("{what}: unreadable answer ({e}): {}", clip(&text)))
        });
    }
    let message = format!("{what}: HTTP {status}: {}", clip(&text));
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Err(RegistryError::Unavailable(message))
    } else {
        Err(RegistryError::Refused(message))
    }
}

/// reqwest's message without the URL it carries (which may hold credentials).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = std::error::Error::source(e);
    let mut deepest = None;
    while let Some(c) = cause {
        deepest = Some(c.to_string());
        cause = c.source();
    }
    match deepest {
        Some(d) => format!("{kind}: {d}"),
        None => kind.to_string(),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Percent-decoding of URL user info (`%40` for `@` in a password).
fn decode_userinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with any user info replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string().trim_end_matches('/').to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_sent_as_basic_auth_and_never_shown() {
        let settings = RegistrySettings {
            url: "https://svc%40corp:p%3Ass@registry.example:8081/apis/ccompat/v7/".into(),
            timeout: Duration::from_secs(1),
            ..RegistrySettings::default()
        };
        let (_, base, auth) = RegistryClient::prepare(&settings).unwrap();
        assert_eq!(base, "https://registry.example:8081/apis/ccompat/v7");
        assert_eq!(auth, Some(("svc@corp".to_string(), "p:ss".to_string())));
        assert_eq!(
            redacted(&settings.url),
            "https://***@registry.example:8081/apis/ccompat/v7/"
        );
        assert!(!format!("{settings:?}").contains("p%3Ass"), "{settings:?}");
    }

    #[test]
    fn explicit_credentials_win_and_bad_settings_are_refused() {
        let settings = RegistrySettings {
            url: "http://u:url-secret@registry:8081".into(),
            basic_auth: Some(("flag-user".into(), "file-secret".into())),
            timeout: Duration::from_secs(1),
            ..RegistrySettings::default()
        };
        let (_, _, auth) = RegistryClient::prepare(&settings).unwrap();
        assert_eq!(auth.unwrap().0, "flag-user");
        for (url, says) in [
            ("ftp://registry", "not http or https"),
            ("registry:8081", ""),
        ] {
            let bad = RegistrySettings {
                url: url.into(),
                ..settings.clone()
            };
            let err = RegistryClient::check(&bad).unwrap_err().to_string();
            assert!(
                err.contains("--schema-registry-url") && err.contains(says),
                "{err}"
            );
        }
        let bad_ca = RegistrySettings {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..settings
        };
        let err = RegistryClient::check(&bad_ca).unwrap_err().to_string();
        assert!(err.contains("TLS"), "{err}");
    }

    #[test]
    fn a_subject_still_being_made_is_asked_again_and_an_incompatible_schema_is_not() {
        let apicurio = "registering under drift-value: HTTP 409 Conflict: {\"message\":\"An \
            artifact with ID 'drift-value' in group 'null' already exists.\",\"error_code\":409}";
        assert_eq!(
            still_being_made(RegistryError::Refused(apicurio.into())),
            RegistryError::Unavailable(apicurio.into())
        );
        let incompatible = "registering under x-value: HTTP 409 Conflict: {\"message\":\"Schema \
            being registered is incompatible with an earlier schema\",\"error_code\":409}";
        assert_eq!(
            still_being_made(RegistryError::Refused(incompatible.into())),
            RegistryError::Refused(incompatible.into())
        );
        let down = RegistryError::Unavailable("connection refused".into());
        assert_eq!(still_being_made(down.clone()), down);
    }
}
