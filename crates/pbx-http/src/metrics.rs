//! `/metrics`: what pbxd has counted, in Prometheus text format, read
//! at each scrape from the counters the runtime, the SIP side and the
//! media engine keep (a `Collector`, so nothing is copied in between).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::Sources;

/// The text of `/metrics` now.
pub fn render(sources: &std::sync::Arc<Sources>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(sources.clone())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// Reads the sources at each scrape.
struct Snapshot(std::sync::Arc<Sources>);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A counter with one label, a value for each.
fn counters<L: ToString>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(L, u64)],
) -> std::fmt::Result {
    let kind = ConstCounter::new(0u64).metric_type();
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (value, count) in values {
        let labels = [(label.to_string(), value.to_string())];
        ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The call queues' figures, a gauge each with the domain and queue as
/// labels.
fn queue_gauges(
    encoder: &mut DescriptorEncoder<'_>,
    figures: &[pbx_runtime::acd::QueueFigures],
) -> std::fmt::Result {
    if figures.is_empty() {
        return Ok(());
    }
    type Read = fn(&pbx_runtime::acd::QueueFigures) -> f64;
    let gauges: [(&str, &str, Read); 4] = [
        (
            "pbxd_queue_waiting",
            "Callers waiting in each call queue",
            |queue| queue.waiting as f64,
        ),
        (
            "pbxd_queue_longest_wait_seconds",
            "How long the caller who has waited longest in each call queue has waited",
            |queue| queue.longest_wait.as_secs_f64(),
        ),
        (
            "pbxd_queue_agents_logged_in",
            "Agents logged in to each call queue",
            |queue| f64::from(queue.agents.logged_in),
        ),
        (
            "pbxd_queue_agents_busy",
            "Agents of each call queue on a call from it, rung for one, or wrapping up",
            |queue| f64::from(queue.agents.busy),
        ),
    ];
    for (name, help, read) in gauges {
        let kind = ConstGauge::new(0.0).metric_type();
        let mut family = encoder.encode_descriptor(name, help, None, kind)?;
        for queue in figures {
            let labels = [("domain", queue.domain.as_str()), ("queue", queue.queue.as_str())];
            ConstGauge::new(read(queue)).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let sources = &self.0;
        let sip = sources.sip.counts();
        let encoder = &mut encoder;
        gauge(
            encoder,
            "pbxd_calls_active",
            "Calls in progress",
            sources.admission.calls() as f64,
        )?;
        counter(
            encoder,
            "pbxd_calls_refused",
            "New calls refused with 503 (overload, limits, stopping)",
            sources.admission.refused(),
        )?;
        counters(
            encoder,
            "pbxd_calls",
            "Calls ended, by disposition (that of the call's first leg)",
            "disposition",
            &sources.runtime.records.ended_by_disposition(),
        )?;
        gauge(
            encoder,
            "pbxd_tasks_active",
            "Script tasks running",
            sources.runtime.registry.count() as f64,
        )?;
        gauge(
            encoder,
            "pbxd_sip_legs_active",
            "SIP call legs live",
            sip.legs as f64,
        )?;
        counters(
            encoder,
            "pbxd_sip_requests",
            "SIP requests taken, by method",
            "method",
            &sip.requests,
        )?;
        counters(
            encoder,
            "pbxd_sip_responses",
            "SIP responses sent, by status code",
            "code",
            &sip.responses,
        )?;
        counter(
            encoder,
            "pbxd_sip_malformed_refused",
            "Malformed SIP messages refused (400, 501, 416, 505, 513...)",
            sip.refused,
        )?;
        counter(
            encoder,
            "pbxd_sip_lockout_refusals",
            "SIP requests refused because their source failed to authenticate too often",
            sip.lockouts,
        )?;
        gauge(
            encoder,
            "pbxd_sip_tcp_connections",
            "SIP TCP connections open",
            sip.tcp_open as f64,
        )?;
        counter(
            encoder,
            "pbxd_sip_tcp_refused",
            "SIP TCP connections refused over sip.tcp_connections_per_source",
            sip.tcp_refused,
        )?;
        let kind = ConstCounter::new(0u64).metric_type();
        let mut family = encoder.encode_descriptor(
            "pbxd_sip_legs_ended",
            "SIP call legs ended, by direction (in: callers, out: placed by pbxd) and whether answered",
            None,
            kind,
        )?;
        for (direction, answered, count) in &sip.legs_ended {
            let labels = [("direction", *direction), ("answered", *answered)];
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
        counter(
            encoder,
            "pbxd_rtp_packets_sent",
            "RTP packets sent by calls that have ended",
            sip.rtp_sent,
        )?;
        counter(
            encoder,
            "pbxd_rtp_packets_received",
            "RTP packets received by calls that have ended",
            sip.rtp_received,
        )?;
        counter(
            encoder,
            "pbxd_rtp_packets_lost",
            "RTP packets the peers' sequence numbers say never came (or came too late), calls that have ended",
            sip.rtp_lost,
        )?;
        counter(
            encoder,
            "pbxd_srtp_packets_refused",
            "SRTP packets refused (failed authentication, replayed), calls that have ended",
            sip.srtp_refused,
        )?;
        counter(
            encoder,
            "pbxd_auth_failures",
            "Failed authentications (SIP digest and HTTP logins)",
            sip.auth_failures,
        )?;
        counter(
            encoder,
            "pbxd_sip_flood_dropped",
            "SIP requests dropped unread: their address sent more than sip.requests_per_source_per_second",
            pbx_sip::gate::flood_limit().map_or(0, |limit| limit.dropped.total()),
        )?;
        counter(
            encoder,
            "pbxd_http_connections_refused",
            "HTTP connections closed as they came: too many open from their address or in all",
            crate::tls::REFUSED.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        if !sip.trunks_up.is_empty() {
            let kind = ConstGauge::new(0i64).metric_type();
            let mut family = encoder.encode_descriptor(
                "pbxd_trunk_up",
                "Whether each SIP trunk is up (1), or down and skipped by new calls (0)",
                None,
                kind,
            )?;
            for (trunk, up) in &sip.trunks_up {
                let labels = [("trunk", trunk.as_str())];
                ConstGauge::new(i64::from(*up)).encode(family.encode_family(&labels)?)?;
            }
        }
        queue_gauges(encoder, &sources.runtime.all_queue_figures())?;
        let events = &sources.events;
        let read = |count: &std::sync::atomic::AtomicU64| count.load(std::sync::atomic::Ordering::Relaxed);
        counter(
            encoder,
            "pbxd_tasks_started",
            "Script tasks started",
            read(&events.tasks_started),
        )?;
        counter(
            encoder,
            "pbxd_script_errors",
            "Script tasks ended by a run-time error",
            read(&events.script_errors),
        )?;
        counter(
            encoder,
            "pbxd_smtp_failures",
            "Mail the SMTP relay did not take",
            read(&events.mail_failures),
        )?;
        counter(
            encoder,
            "pbxd_http_client_failures",
            "HTTPCall requests that got no response",
            read(&events.http_failures),
        )?;
        if let Some(media) = &sources.media {
            let histogram = media.lateness_histogram();
            let mut metric = encoder.encode_descriptor(
                "pbxd_media_slot_lateness_seconds",
                "How late the media clock's slots ran, over every worker",
                None,
                prometheus_client::metrics::MetricType::Histogram,
            )?;
            metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                histogram.sum_seconds,
                histogram.count,
                &histogram.buckets,
                None,
            )?;
            gauge(
                encoder,
                "pbxd_media_lateness_seconds",
                "The media clock's tick lateness, 99th percentile over the last second, worst worker",
                media.lateness().as_secs_f64(),
            )?;
            gauge(
                encoder,
                "pbxd_media_busy_ratio",
                "How busy the busiest media worker is (0 to 1)",
                media.busy_percent() as f64 / 100.0,
            )?;
        }
        Ok(())
    }
}
