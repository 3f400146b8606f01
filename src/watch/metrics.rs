//! A watch's state for Prometheus: open sessions per target and class, polls and poll failures
//! per target, a poll duration histogram, and the time of each target's last successful poll,
//! served as `/metrics` in the text exposition format.
//!
//! Scrape it with `- targets: ['127.0.0.1:9464']` under a `scrape_configs` job; the metrics are
//! named `winrm_sessions_*`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Poll;
use crate::error::{ErrorKind, Result};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetClass {
    target: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Target {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: String,
}

/// The metrics of a watch; feed it each [`Poll`] with [`Metrics::observe`].
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    open: Family<TargetClass, Gauge>,
    polls: Family<Target, Counter>,
    failures: Family<Target, Counter>,
    duration: Family<Class, Histogram>,
    last_success: Family<Target, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("winrm_sessions");
        let open = Family::<TargetClass, Gauge>::default();
        let polls = Family::<Target, Counter>::default();
        let failures = Family::<Target, Counter>::default();
        let duration = Family::<Class, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 12))
        });
        let last_success = Family::<Target, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "open_sessions",
            "Sessions open on a target at its last successful poll",
            open.clone(),
        );
        registry.register("polls", "Polls of a target", polls.clone());
        registry.register(
            "poll_failures",
            "Polls of a target that failed",
            failures.clone(),
        );
        registry.register(
            "poll_duration_seconds",
            "How long a poll of one host took, retries included",
            duration.clone(),
        );
        registry.register(
            "last_successful_poll_timestamp_seconds",
            "When the last successful poll of a target ended (Unix time)",
            last_success.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            open,
            polls,
            failures,
            duration,
            last_success,
        }
    }

    /// Counts a host's poll of `class`.
    pub fn observe(&self, class: &str, poll: &Poll) {
        let target = Target {
            target: poll.target.clone(),
        };
        self.polls.get_or_create(&target).inc();
        self.duration
            .get_or_create(&Class {
                class: class.to_owned(),
            })
            .observe(poll.duration.as_secs_f64());
        match &poll.outcome {
            Ok(open) => {
                self.open
                    .get_or_create(&TargetClass {
                        target: poll.target.clone(),
                        class: class.to_owned(),
                    })
                    .set(i64::try_from(*open).unwrap_or(i64::MAX));
                let at = poll
                    .at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                self.last_success.get_or_create(&target).set(at);
            }
            Err(_) => {
                self.failures.get_or_create(&target).inc();
            }
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Serves `/metrics` on `address` (e.g. `127.0.0.1:9464`) until the returned server is
    /// dropped; the port actually bound is [`MetricsServer::address`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Metrics`] when the address cannot be bound (in use, not local...).
    pub async fn serve(&self, address: &str) -> Result<MetricsServer> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| ErrorKind::Metrics {
                address: address.to_owned(),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| ErrorKind::Metrics {
            address: address.to_owned(),
            source,
        })?;
        let metrics = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &request)) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        tracing::info!(%bound, "Serving metrics on /metrics");
        Ok(MetricsServer {
            address: bound,
            _task: crate::fleet::AbortOnDrop(task),
        })
    }
}

fn answer<B>(
    metrics: &Metrics,
    request: &hyper::Request<B>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, content_type, body) = if request.uri().path() != "/metrics" {
        (
            404,
            "text/plain",
            "not found: the metrics are at /metrics".to_owned(),
        )
    } else if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        (405, "text/plain", "GET only".to_owned())
    } else {
        (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        )
    };
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap_or_default()
}

/// The `/metrics` endpoint; it stops when dropped.
pub struct MetricsServer {
    address: SocketAddr,
    _task: crate::fleet::AbortOnDrop,
}

impl MetricsServer {
    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Error;

    fn poll(target: &str, outcome: Result<usize>) -> Poll {
        Poll {
            target: target.into(),
            number: 1,
            at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_millis(120),
            outcome,
        }
    }

    #[test]
    fn polls_show_as_open_sessions_counts_failures_and_times() {
        let metrics = Metrics::new();
        metrics.observe("MSFT_SmbSession", &poll("fs01", Ok(7)));
        metrics.observe(
            "MSFT_SmbSession",
            &poll("fs02", Err(Error::protocol("down"))),
        );
        let text = metrics.render();
        for line in [
            r#"winrm_sessions_open_sessions{target="fs01",class="MSFT_SmbSession"} 7"#,
            r#"winrm_sessions_polls_total{target="fs01"} 1"#,
            r#"winrm_sessions_polls_total{target="fs02"} 1"#,
            r#"winrm_sessions_poll_failures_total{target="fs02"} 1"#,
            r#"winrm_sessions_poll_duration_seconds_count{class="MSFT_SmbSession"} 2"#,
            r#"winrm_sessions_last_successful_poll_timestamp_seconds{target="fs01"} 1800000000"#,
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{line}\n{text}");
        }
        assert!(
            !text.contains(r#"poll_failures_total{target="fs01"}"#),
            "{text}"
        );
        assert!(!text.contains(r#"open_sessions{target="fs02""#), "{text}");
    }

    #[test]
    fn only_get_and_head_of_metrics_are_answered() {
        let metrics = Metrics::new();
        metrics.observe("MSFT_SmbSession", &poll("fs01", Ok(3)));
        let status = |method: &str, path: &str| {
            let request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap();
            answer(&metrics, &request).status().as_u16()
        };
        assert_eq!(status("GET", "/metrics"), 200);
        assert_eq!(status("HEAD", "/metrics"), 200);
        assert_eq!(status("POST", "/metrics"), 405);
        assert_eq!(status("GET", "/"), 404);
        assert_eq!(status("GET", "/metrics/x"), 404);
    }
}
