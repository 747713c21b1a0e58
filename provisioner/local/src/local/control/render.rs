//! `provision local status` as a person reads it (a table) and as a program
//! does (JSON, the proto3 JSON mapping of the control service's
//! `StatusResponse`, so `grpcurl` and `-o json` describe one schema).

use contracts::control::v1::StatusResponse;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// The status table: a line per replica (CPU and memory in percent of the
/// service's `aws.cpu` and `aws.memory`), then a line per service on its
/// replacements and one on its scaling.
pub fn table(status: &StatusResponse) -> String {
    let mut text = format!(
        "{:<14} {:<12} {:<20} {:<10} {:<7} {:>8} {:>8} {:>6} {:>6}\n",
        "SERVICE", "REPLICA", "ADDRESS", "STATE", "IN DNS", "PID", "UPTIME", "CPU", "MEM"
    );
    let percent = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| format!("{value:.0}%"));
    for replica in &status.replicas {
        text.push_str(&format!(
            "{:<14} {:<12} {:<20} {:<10} {:<7} {:>8} {:>7}s {:>6} {:>6}\n",
            replica.service,
            replica.replica,
            replica.address,
            replica.state,
            match replica.in_dns {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            replica.pid,
            replica.uptime_secs,
            percent(replica.cpu_percent),
            percent(replica.memory_percent),
        ));
    }
    for service in status.services.iter().filter(|service| status.replicas.iter().any(|r| r.service == service.name)) {
        text.push_str(&format!("{}: {} replacement(s) so far\n", service.name, service.replacements));
    }
    for service in &status.services {
        let Some(scaling) = &service.scaling else { continue };
        let measured: Vec<String> = scaling
            .targets
            .iter()
            .map(|target| {
                format!("{} {} (target {}%)", target.metric, percent(target.measured_percent), target.target_percent)
            })
            .collect();
        text.push_str(&format!(
            "{}: autoscaling {}..={}, {} wanted, {}",
            service.name,
            scaling.min,
            scaling.max,
            scaling.desired,
            measured.join(", ")
        ));
        if !scaling.last_change.is_empty() {
            text.push_str(&format!("; {} {} s ago", scaling.last_change, scaling.last_change_secs_ago));
        }
        text.push('\n');
    }
    text
}

/// The status as JSON: field names as in `control.proto`, every field
/// present (zeros included) but the unset optional ones, 64-bit numbers as
/// numbers.
pub fn json(status: &StatusResponse) -> String {
    let pool = DescriptorPool::decode(contracts::CONTROL_FILE_DESCRIPTOR_SET).expect("compiled in");
    let descriptor = pool.get_message_by_name("provision.local.v1.StatusResponse").expect("in control.proto");
    let message = DynamicMessage::decode(descriptor, status.encode_to_vec().as_slice()).expect("the same message");
    let options =
        SerializeOptions::new().use_proto_field_name(true).skip_default_fields(false).stringify_64_bit_integers(false);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut out);
    message.serialize_with_options(&mut serializer, &options).expect("a message serializes");
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[cfg(test)]
mod tests {
    use contracts::control::v1::{Replica, ServiceSummary};

    use super::*;

    fn status() -> StatusResponse {
        StatusResponse {
            app: "shop".into(),
            pid: 7,
            dns_addr: "127.0.0.1:8600".into(),
            replicas: vec![Replica {
                service: "ranking".into(),
                replica: "replica-1".into(),
                address: "127.0.2.2:50051".into(),
                state: "healthy".into(),
                in_dns: Some(true),
                pid: 42,
                uptime_secs: 9,
                cpu_percent: Some(3.2),
                memory_percent: None,
            }],
            services: vec![ServiceSummary { name: "ranking".into(), replacements: 1, scaling: None }],
        }
    }

    #[test]
    fn json_names_fields_as_the_proto_does_and_keeps_zeros_and_numbers() {
        let mut status = status();
        status.replicas[0].uptime_secs = 0;
        let value: serde_json::Value = serde_json::from_str(&json(&status)).unwrap();
        let replica = &value["replicas"][0];
        assert_eq!(replica["uptime_secs"], 0, "{value}");
        assert_eq!(replica["in_dns"], true);
        assert_eq!(replica["cpu_percent"], 3.2);
        assert!(replica.get("memory_percent").is_none(), "unset stays out: {value}");
        assert_eq!(value["services"][0]["replacements"], 1);
        assert_eq!(value["pid"], 7);
    }

    #[test]
    fn table_has_a_line_per_replica_and_per_service() {
        let text = table(&status());
        assert!(text.contains("ranking        replica-1    127.0.2.2:50051      healthy    yes"), "{text}");
        assert!(text.contains("3%"), "{text}");
        assert!(text.contains("ranking: 1 replacement(s) so far"), "{text}");
    }
}
