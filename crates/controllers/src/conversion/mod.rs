//! The CRDs' conversion webhook (`--conversion-addr`): the API server sends it the objects it
//! must serve at a version other than the one they are stored at (`v1alpha1` and `v1beta1`,
//! `weaver_api::v1alpha1::convert`), over HTTPS. Every replica serves it, whether it leads or
//! not: the API server reaches any of them behind the Service.
//!
//! Its certificates are the controller's own (`certs`): the first replica to start makes them
//! into the Secret `--conversion-secret` of its namespace, every replica serves what the Secret
//! holds, renews them when due (a write that loses to another replica's reads theirs), and sets
//! the conversion of each CRD it serves: `Webhook`, at its Service (`--conversion-service`),
//! trusting the authorities (`caBundle`). It looks again every minute, so a renewal another
//! replica made is served within one, and a CRD applied again (an upgrade) is set again.
//!
//! The chart's CRDs name no conversion (they are the same for every install, as Helm's `crds/`
//! are): until a controller has set it, the API server converts by changing the apiVersion
//! alone, which the types read (`weaver_api::environment_sync::NewestImage`); a controller sets
//! it before it starts reconciling.

pub mod certs;

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::response::Status;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::http::{Limits, read_body};

/// The path the CRDs' `clientConfig` names.
pub const PATH: &str = "/convert";
/// The largest review read: the API server sends a whole list's objects in one.
pub const MAX_REVIEW_BYTES: usize = 64 * 1024 * 1024;
/// How often the Secret and the CRDs are looked at again.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// The `clientConfig` of a CRD whose conversion webhook is the Service `namespace/name` (port
/// 443, [`PATH`]).
pub fn service(namespace: &str, name: &str) -> serde_json::Value {
    serde_json::json!({"service": {"namespace": namespace, "name": name, "path": PATH, "port": 443}})
}

/// What `--conversion-*` say.
#[derive(Debug, Clone)]
pub struct Options {
    /// The controller's namespace, where the Secret is.
    pub namespace: String,
    /// The Secret holding the certificates.
    pub secret: String,
    /// The names (and addresses) the serving certificate is for: the Service's DNS names.
    pub hosts: Vec<String>,
    /// Where the API server reaches it: the CRDs' `clientConfig` without its `caBundle`
    /// ([`service`], or a `url`).
    pub client_config: serde_json::Value,
    /// The CRDs whose conversion it sets.
    pub crds: Vec<String>,
    pub limits: Limits,
}

/// Serves conversion reviews on `listener` and keeps the certificates, until `shutdown`.
/// Returns once the first certificates are served, with the task that goes on; an error when
/// none can be had (the Secret can be neither read nor written).
pub async fn serve(
    client: kube::Client,
    options: Options,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    let keeper = Keeper { client, options };
    let first = keeper.look(None).await?;
    let resolver = Arc::new(Resolver(RwLock::new(certified(&first)?)));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("the conversion webhook's TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let limits = keeper.options.limits.clone();
    Ok(async move {
        let answering = crate::http::serve(
            listener,
            Some(acceptor),
            limits.clone(),
            move |request| answer(request, limits.clone()),
            shutdown,
        );
        let keeping = async move {
            let mut current = first;
            loop {
                tokio::time::sleep(LOOK_EVERY).await;
                match keeper.look(Some(&current)).await {
                    Ok(next) if next != current => match certified(&next) {
                        Ok(key) => {
                            *resolver.0.write().unwrap_or_else(|e| e.into_inner()) = key;
                            tracing::info!("the conversion webhook serves its renewed certificate");
                            current = next;
                        }
                        Err(err) => tracing::warn!("the conversion webhook's new certificate cannot be served: {err}"),
                    },
                    Ok(_) => {}
                    Err(err) => tracing::warn!("the conversion webhook's certificates: {err}"),
                }
            }
        };
        tokio::select! {
            () = answering => {}
            () = keeping => {}
        }
    })
}

/// Serves the certificate it holds to every client (the API server asks for the Service's name).
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn certified(certs: &certs::Certificates) -> Result<Arc<CertifiedKey>, String> {
    let (cert, key) = certs::serving_der(certs)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| format!("tls.key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.into()], signing)))
}

struct Keeper {
    client: kube::Client,
    options: Options,
}

impl Keeper {
    /// The certificates to serve: the Secret's, renewed when due, and the CRDs' conversion set
    /// to this webhook, trusting their authorities.
    async fn look(&self, serving: Option<&certs::Certificates>) -> Result<certs::Certificates, String> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.options.namespace);
        let name = &self.options.secret;
        let at = format!("Secret {}/{name}", self.options.namespace);
        let live = secrets.get_opt(name).await.map_err(|e| format!("cannot read {at}: {e}"))?;
        let stored = live.as_ref().and_then(read_secret);
        let certs = match certs::renewed(stored.as_ref(), &self.options.hosts, SystemTime::now())? {
            None => stored.expect("nothing is due only for certificates that were read"),
            Some(renewed) => {
                let written = match live {
                    Some(mut secret) => {
                        secret.data = Some(secret_data(&renewed));
                        secrets.replace(name, &PostParams::default(), &secret).await.map(|_| ())
                    }
                    None => {
                        let mut secret = Secret::default();
                        secret.metadata.name = Some(name.clone());
                        secret.type_ = Some("kubernetes.io/tls".into());
                        secret.data = Some(secret_data(&renewed));
                        secrets.create(&PostParams::default(), &secret).await.map(|_| ())
                    }
                };
                match written {
                    Ok(()) => {
                        tracing::info!("wrote the conversion webhook's certificates to {at}");
                        renewed
                    }
                    // Another replica wrote first (a conflict): serve what it wrote.
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        let secret = secrets.get(name).await.map_err(|e| format!("cannot read {at}: {e}"))?;
                        read_secret(&secret)
                            .ok_or_else(|| format!("{at} holds no certificates another replica wrote"))?
                    }
                    Err(err) => {
                        return match serving {
                            // Serving goes on with what it has; the next look tries again.
                            Some(serving) => {
                                tracing::warn!("cannot write renewed certificates to {at}: {err}");
                                Ok(serving.clone())
                            }
                            None => Err(format!("cannot write {at}: {err}")),
                        };
                    }
                }
            }
        };
        for crd in &self.options.crds {
            if let Err(err) = self.convert_by_this(crd, &certs.ca_bundle).await {
                tracing::warn!("cannot set the conversion of CustomResourceDefinition {crd}: {err}");
            }
        }
        Ok(certs)
    }

    /// Sets the CRD's conversion to this webhook, trusting `bundle`, when it is not so already
    /// (a CRD not installed is left alone). Another install that shares the CRD (a shard) keeps
    /// it while its Service is there: it converts as well, and a CRD that changes every minute
    /// would break every watch of its objects each time. Once that Service is gone, this one
    /// takes over.
    async fn convert_by_this(&self, crd: &str, bundle: &str) -> Result<(), kube::Error> {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let Some(live) = crds.get_opt(crd).await? else { return Ok(()) };
        let named =
            live.spec.conversion.as_ref().and_then(|c| c.webhook.as_ref()).and_then(|w| w.client_config.as_ref());
        if let Some(other) = named.and_then(|c| c.service.as_ref())
            && self.options.client_config["service"]["namespace"] != other.namespace.as_str()
        {
            let services: Api<Service> = Api::namespaced(self.client.clone(), &other.namespace);
            if services.get_opt(&other.name).await?.is_some() {
                tracing::debug!(
                    "CustomResourceDefinition {crd} converts at Service {}/{}: left so",
                    other.namespace,
                    other.name
                );
                return Ok(());
            }
        }
        let mut client_config = self.options.client_config.clone();
        client_config["caBundle"] = serde_json::to_value(ByteString(bundle.as_bytes().to_vec())).unwrap_or_default();
        let conversion = serde_json::json!({
            "strategy": "Webhook",
            "webhook": {"clientConfig": client_config, "conversionReviewVersions": ["v1"]},
        });
        let current = serde_json::to_value(&live.spec.conversion).unwrap_or_default();
        if current == conversion {
            return Ok(());
        }
        let patch = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": crd}, "spec": {"conversion": conversion},
        });
        let params = PatchParams::apply(weaver_api::OPERATOR_NAME).force();
        crds.patch(crd, &params, &Patch::Apply(patch)).await?;
        tracing::info!("set the conversion of CustomResourceDefinition {crd} to this webhook");
        Ok(())
    }
}

fn read_secret(secret: &Secret) -> Option<certs::Certificates> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| data.get(key).and_then(|v| String::from_utf8(v.0.clone()).ok());
    Some(certs::Certificates {
        ca_bundle: text(certs::CA_CERT)?,
        ca_key: text(certs::CA_KEY)?,
        cert: text(certs::TLS_CERT)?,
        key: text(certs::TLS_KEY)?,
    })
}

fn secret_data(certs: &certs::Certificates) -> std::collections::BTreeMap<String, ByteString> {
    [
        (certs::CA_CERT, &certs.ca_bundle),
        (certs::CA_KEY, &certs.ca_key),
        (certs::TLS_CERT, &certs.cert),
        (certs::TLS_KEY, &certs.key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
    .collect()
}

async fn answer(request: Request<Incoming>, limits: Limits) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |code: StatusCode, body: Vec<u8>| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = code;
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
        Ok(response)
    };
    if request.uri().path() != PATH {
        return reply(
            StatusCode::NOT_FOUND,
            br#"{"message":"not found: conversion reviews go to POST /convert"}"#.to_vec(),
        );
    }
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, br#"{"message":"POST a ConversionReview"}"#.to_vec());
    }
    let body = match read_body(request.into_body(), MAX_REVIEW_BYTES, &limits).await {
        Ok(body) => body,
        Err(err) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"message": err.to_string()}).to_string().into_bytes(),
            );
        }
    };
    let review = review(&body);
    reply(StatusCode::OK, serde_json::to_vec(&review).unwrap_or_default())
}

/// The answer to a ConversionReview: every object converted, or a failure naming the first that
/// could not be (no object's content is quoted).
pub fn review(body: &[u8]) -> ConversionReview {
    let request = serde_json::from_slice::<ConversionReview>(body)
        .map_err(|e| format!("not a ConversionReview: {e}"))
        .and_then(|review| {
            ConversionRequest::from_review(review).map_err(|_| "the ConversionReview holds no request".to_string())
        });
    let mut request = match request {
        Ok(request) => request,
        Err(message) => return ConversionResponse::invalid(Status::failure(&message, "BadRequest")).into_review(),
    };
    let desired = request.desired_api_version.clone();
    let objects = std::mem::take(&mut request.objects);
    let response = ConversionResponse::for_request(request);
    let mut converted = Vec::with_capacity(objects.len());
    for object in objects {
        let named = format!(
            "{} {}/{}",
            object["kind"].as_str().unwrap_or("object"),
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        match weaver_api::v1alpha1::convert(object, &desired) {
            // The API server refuses an answer without metadata, and asks, when a server-side
            // apply prunes another version's fields, about objects that have none.
            Ok(mut object) => {
                if let Some(object) = object.as_object_mut() {
                    object.entry("metadata").or_insert_with(|| serde_json::json!({}));
                }
                converted.push(object)
            }
            Err(err) => return response.failure(Status::failure(&format!("{named}: {err}"), "Invalid")).into_review(),
        }
    }
    response.success(converted).into_review()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_review_converts_every_object_and_echoes_the_uid() {
        let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "desiredAPIVersion": "weaver.example.com/v1alpha1",
            "objects": [{"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
                "metadata": {"name": "a", "namespace": "n"},
                "spec": {"source": {"url": "https://git.example/a.git", "ref": {"branch": "main"}}},
                "status": {"imageUpdates": {"lastAttemptTime": "t", "revision": "r", "branch": "main", "requests": 1,
                    "images": [{"environment": "dev", "image": "web"}]}}}]}});
        let out = serde_json::to_value(review(body.to_string().as_bytes())).unwrap();
        let response = &out["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["result"]["status"], "Success");
        assert_eq!(response["convertedObjects"][0]["apiVersion"], "weaver.example.com/v1alpha1");
        assert_eq!(
            response["convertedObjects"][0]["status"]["imageUpdates"]["images"],
            json!(["dev web none allowed"])
        );
    }

    /// kube-apiserver (1.32) asks about objects without metadata when a server-side apply prunes
    /// the fields of a manager at another version, and refuses an answer without metadata
    /// (`restoreObjectMeta`: "missing metadata in converted object"), which fails the apply.
    #[test]
    fn an_object_without_metadata_is_answered_with_metadata() {
        let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {
            "uid": "u", "desiredAPIVersion": "weaver.example.com/v1beta1",
            "objects": [{"apiVersion": "weaver.example.com/v1alpha1", "kind": "EnvironmentSync",
                "spec": {"interval": "5s"}}]}});
        let out = serde_json::to_value(review(body.to_string().as_bytes())).unwrap();
        assert_eq!(out["response"]["result"]["status"], "Success", "{out}");
        let converted = &out["response"]["convertedObjects"][0];
        assert_eq!(converted["metadata"], json!({}), "{converted}");
        assert_eq!(converted["spec"], json!({"interval": "5s"}));
    }

    #[test]
    fn what_cannot_be_converted_fails_the_review_by_name() {
        let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {
            "uid": "u", "desiredAPIVersion": "weaver.example.com/v9",
            "objects": [{"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync", "metadata": {"name": "a", "namespace": "n"}}]}});
        let out = serde_json::to_value(review(body.to_string().as_bytes())).unwrap();
        assert_eq!(out["response"]["result"]["status"], "Failure");
        let message = out["response"]["result"]["message"].as_str().unwrap();
        assert!(message.starts_with("EnvironmentSync n/a: "), "{message}");
        let out = serde_json::to_value(review(b"{")).unwrap();
        assert!(out["response"]["result"]["message"].as_str().unwrap().contains("not a ConversionReview"));
    }
}
