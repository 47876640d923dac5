//! The settings of the schema registry: where it is, how to authenticate, and what it is
//! used for (writer schemas of Confluent-framed input; output schemas with
//! `--output-format confluent`). Secrets come from files or the environment and are never
//! logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::codec::registry::client::{RegistrySettings, redacted};
use crate::error::{Error, Result};

/// How outputs (predictions, drift reports) are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The Avro binary encoding of one record.
    #[default]
    Avro,
    /// The Confluent wire format: the schemas registered under `<topic>-value` (needs
    /// `--schema-registry-url`), each output framed with its schema's id.
    Confluent,
}

/// Where the schema registry is and how to reach it.
#[derive(Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Confluent-compatible Schema Registry (e.g. `http://registry:8081`, or Apicurio's
    /// `…/apis/ccompat/v7`). With `--input-format confluent`, each record is decoded with
    /// the writer schema its id names, fetched on first sight and cached, so producers can
    /// evolve their schema without a restart. Credentials in the URL are used as basic auth.
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_URL", hide_env_values = true)]
    pub schema_registry_url: Option<String>,

    /// Output framing: `avro`, or `confluent` (registers the prediction and drift report
    /// schemas under `<topic>-value` and frames outputs with their ids).
    #[arg(
        long,
        env = "DRIFTWOOD_OUTPUT_FORMAT",
        value_enum,
        default_value = "avro"
    )]
    pub output_format: OutputFormat,

    /// Basic-auth user of the schema registry; the password comes from
    /// `--schema-registry-password-file` or `DRIFTWOOD_SCHEMA_REGISTRY_PASSWORD`.
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_USER")]
    pub schema_registry_user: Option<String>,

    /// File holding the basic-auth password (a trailing newline is dropped).
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_PASSWORD_FILE")]
    pub schema_registry_password_file: Option<PathBuf>,

    /// PEM file of certificates to trust for the registry, besides the system's.
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_CA_FILE")]
    pub schema_registry_ca_file: Option<PathBuf>,

    /// PEM client certificate for mutual TLS with the registry (with `--schema-registry-key-file`).
    #[arg(
        long,
        env = "DRIFTWOOD_SCHEMA_REGISTRY_CERT_FILE",
        requires = "schema_registry_key_file"
    )]
    pub schema_registry_cert_file: Option<PathBuf>,

    /// PEM (PKCS#8) private key of the client certificate.
    #[arg(
        long,
        env = "DRIFTWOOD_SCHEMA_REGISTRY_KEY_FILE",
        requires = "schema_registry_cert_file"
    )]
    pub schema_registry_key_file: Option<PathBuf>,

    /// How long one request to the registry may take.
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub schema_registry_timeout: Duration,

    /// Most writer schemas kept by id; past it the oldest is fetched again when seen.
    #[arg(long, env = "DRIFTWOOD_SCHEMA_REGISTRY_CACHE", default_value_t = 1000)]
    pub schema_registry_cache: usize,
}

impl std::fmt::Debug for RegistryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryArgs")
            .field(
                "schema_registry_url",
                &self.schema_registry_url.as_deref().map(redacted),
            )
            .field("output_format", &self.output_format)
            .field("schema_registry_user", &self.schema_registry_user)
            .field(
                "schema_registry_password_file",
                &self.schema_registry_password_file,
            )
            .field("schema_registry_ca_file", &self.schema_registry_ca_file)
            .field("schema_registry_cert_file", &self.schema_registry_cert_file)
            .field("schema_registry_timeout", &self.schema_registry_timeout)
            .field("schema_registry_cache", &self.schema_registry_cache)
            .finish()
    }
}

/// The environment variable a registry password may come from.
pub const PASSWORD_ENV: &str = "DRIFTWOOD_SCHEMA_REGISTRY_PASSWORD";

impl RegistryArgs {
    /// Checks the registry settings against the framing of what is read (the input, or
    /// `--labels-format`: `framed_in` when either is Confluent-framed) and of the outputs.
    pub fn validate(&self, framed_in: bool) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        if self.schema_registry_url.is_none() {
            if self.output_format == OutputFormat::Confluent {
                return bad(
                    "--output-format confluent needs --schema-registry-url to register the output schemas",
                );
            }
            return Ok(());
        }
        if !framed_in && self.output_format != OutputFormat::Confluent {
            return bad(
                "--schema-registry-url is used with --input-format confluent, --labels-format confluent or --output-format confluent; none is set",
            );
        }
        if self.schema_registry_cache == 0 {
            return bad("--schema-registry-cache must be at least 1");
        }
        if self.schema_registry_timeout.is_zero() {
            return bad("--schema-registry-timeout must be more than 0s");
        }
        if self.schema_registry_user.is_none() && self.schema_registry_password_file.is_some() {
            return bad("--schema-registry-password-file needs --schema-registry-user");
        }
        Ok(())
    }

    /// The client settings, with secrets and certificates read from their files and the
    /// environment; `None` without `--schema-registry-url`.
    pub fn settings(&self) -> Result<Option<RegistrySettings>> {
        let Some(url) = &self.schema_registry_url else {
            return Ok(None);
        };
        let read = |path: &Path| std::fs::read(path).map_err(|e| Error::io(path, e));
        let basic_auth = match &self.schema_registry_user {
            None => None,
            Some(user) => {
                let password = match &self.schema_registry_password_file {
                    Some(path) => String::from_utf8_lossy(&read(path)?).trim_end_matches(['\r', '\n']).to_string(),
                    None => std::env::var(PASSWORD_ENV).map_err(|_| {
                        Error::Config(format!("--schema-registry-user needs a password: --schema-registry-password-file or {PASSWORD_ENV}"))
                    })?,
                };
                Some((user.clone(), password))
            }
        };
        let identity = match (
            &self.schema_registry_cert_file,
            &self.schema_registry_key_file,
        ) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        Ok(Some(RegistrySettings {
            url: url.clone(),
            basic_auth,
            ca_pem: self
                .schema_registry_ca_file
                .as_deref()
                .map(read)
                .transpose()?,
            identity_pem: identity,
            timeout: self.schema_registry_timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: Option<&str>, output: OutputFormat) -> RegistryArgs {
        RegistryArgs {
            schema_registry_url: url.map(String::from),
            output_format: output,
            schema_registry_timeout: Duration::from_secs(5),
            schema_registry_cache: 1000,
            ..RegistryArgs::default()
        }
    }

    #[test]
    fn the_registry_goes_with_confluent_framing_in_or_out() {
        let url = Some("http://registry:8081");
        args(url, OutputFormat::Avro).validate(true).unwrap();
        args(url, OutputFormat::Confluent).validate(false).unwrap();
        let unused = args(url, OutputFormat::Avro).validate(false).unwrap_err();
        assert!(unused.to_string().contains("none is set"), "{unused}");
        let missing = args(None, OutputFormat::Confluent)
            .validate(false)
            .unwrap_err();
        assert!(
            missing.to_string().contains("needs --schema-registry-url"),
            "{missing}"
        );
    }

    #[test]
    fn the_password_comes_from_its_file_without_the_newline_and_is_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut a = args(Some("http://registry:8081"), OutputFormat::Avro);
        a.schema_registry_user = Some("driftwood".into());
        a.schema_registry_password_file = Some(file);
        let settings = a.settings().unwrap().unwrap();
        assert_eq!(
            settings.basic_auth,
            Some(("driftwood".into(), "s3cret".into()))
        );
        assert!(!format!("{settings:?} {a:?}").contains("s3cret"));
    }
}
