//! Building the answer to one query the way Cloud Map's MULTIVALUE routing
//! does: at most eight healthy instances, in random order.

use std::net::IpAddr;

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, SRV},
    },
};
use rand::seq::SliceRandom;

use crate::registry::{Instance, Registry, normalize};

/// Route 53 MULTIVALUE answers name at most this many records.
pub const MAX_ANSWERS: usize = 8;

/// Answers a decoded request. Only standard queries are answered;
/// anything else gets NOTIMP, an unparsable question FORMERR upstream.
pub fn respond(registry: &Registry, request: &Message) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return response;
    }
    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    response.add_query(query.clone());
    answer(registry, query, &mut response);
    response
}

fn answer(registry: &Registry, query: &Query, response: &mut Message) {
    let asked = query.name().to_ascii();
    let asked = normalize(&asked);

    // The service name itself: A/AAAA and SRV over its instances.
    if let Some(service) = registry.service(&asked) {
        let ttl = service.ttl.as_secs().min(u32::MAX as u64) as u32;
        let mut instances = service.instances;
        if instances.is_empty() {
            // Cloud Map has no record at all for a service with no healthy
            // instance, so the name does not exist.
            response.metadata.response_code = ResponseCode::NXDomain;
            return;
        }
        instances.shuffle(&mut rand::rng());
        let service_name = query.name().clone();
        match query.query_type() {
            RecordType::A | RecordType::AAAA => {
                let wanted = query.query_type();
                for instance in instances.iter().filter(|instance| family(instance) == wanted).take(MAX_ANSWERS) {
                    response.add_answer(address_record(service_name.clone(), ttl, instance.addr.ip()));
                }
            }
            RecordType::SRV => {
                for instance in instances.iter().take(MAX_ANSWERS) {
                    let target = instance_name(&service_name, instance);
                    let srv = SRV::new(1, 1, instance.addr.port(), target.clone());
                    response.add_answer(Record::from_rdata(service_name.clone(), ttl, RData::SRV(srv)));
                    response.add_additional(address_record(target, ttl, instance.addr.ip()));
                }
            }
            _ => {}
        }
        return;
    }

    // `<instance-id>.<service>`: the target of an SRV answer.
    if let Some((id, service_part)) = asked.split_once('.')
        && let Some(service) = registry.service(service_part)
        && let Some(instance) = service.instances.iter().find(|instance| instance.id.eq_ignore_ascii_case(id))
    {
        let ttl = service.ttl.as_secs().min(u32::MAX as u64) as u32;
        if family(instance) == query.query_type() {
            response.add_answer(address_record(query.name().clone(), ttl, instance.addr.ip()));
        }
        return;
    }

    response.metadata.response_code = ResponseCode::NXDomain;
}

fn family(instance: &Instance) -> RecordType {
    match instance.addr.ip() {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

fn address_record(name: Name, ttl: u32, ip: IpAddr) -> Record {
    let rdata = match ip {
        IpAddr::V4(ip) => RData::A(A(ip)),
        IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
    };
    Record::from_rdata(name, ttl, rdata)
}

fn instance_name(service: &Name, instance: &Instance) -> Name {
    Name::from_ascii(&instance.id).and_then(|label| label.append_domain(service)).unwrap_or_else(|_| service.clone())
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, time::Duration};

    use hickory_proto::{op::Query, rr::Name};

    use super::*;

    fn ask(registry: &Registry, name: &str, kind: RecordType) -> Message {
        let mut request = Message::query();
        request.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        respond(registry, &request)
    }

    fn registry_with(count: u8) -> Registry {
        let registry = Registry::new();
        registry.define("game-server.local", Duration::from_secs(10));
        for index in 0..count {
            let addr: SocketAddr = format!("127.0.1.{}:5000", index + 1).parse().unwrap();
            registry.register("game-server.local", &format!("r{index}"), addr);
        }
        registry
    }

    #[test]
    fn a_records_name_every_instance_up_to_eight_with_the_ttl() {
        let answer = ask(&registry_with(3), "game-server.local.", RecordType::A);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.answers.len(), 3);
        assert!(answer.answers.iter().all(|record| record.ttl == 10));

        let answer = ask(&registry_with(12), "GAME-SERVER.local", RecordType::A);
        assert_eq!(answer.answers.len(), MAX_ANSWERS);
    }

    #[test]
    fn answers_are_shuffled() {
        let registry = registry_with(8);
        let orders: std::collections::HashSet<Vec<String>> = (0..20)
            .map(|_| {
                ask(&registry, "game-server.local", RecordType::A).answers.iter().map(|r| r.data.to_string()).collect()
            })
            .collect();
        assert!(orders.len() > 1, "20 answers came in one order");
    }

    #[test]
    fn srv_records_carry_ports_and_the_targets_addresses() {
        let answer = ask(&registry_with(2), "game-server.local", RecordType::SRV);
        assert_eq!(answer.answers.len(), 2);
        assert_eq!(answer.additionals.len(), 2);
        for record in &answer.answers {
            let RData::SRV(srv) = &record.data else { panic!("not SRV: {record:?}") };
            assert_eq!(srv.port, 5000);
            let target = ask(&registry_with(2), &srv.target.to_ascii(), RecordType::A);
            assert_eq!(target.answers.len(), 1, "the SRV target resolves");
        }
    }

    #[test]
    fn unknown_names_and_services_without_instances_do_not_exist() {
        let answer = ask(&registry_with(2), "ranking.local", RecordType::A);
        assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
        let answer = ask(&registry_with(0), "game-server.local", RecordType::A);
        assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn a_deregistered_instance_leaves_the_answer_at_once() {
        let registry = registry_with(2);
        registry.deregister("game-server.local", "r0");
        let answer = ask(&registry, "game-server.local", RecordType::A);
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(answer.answers[0].data.to_string(), "127.0.1.2");
    }
}
