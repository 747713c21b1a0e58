//! `[service.ingress]` on AWS: the real `provision` against moto's server,
//! what it made read back with boto3 (a client nobody here wrote): the
//! load balancer, its security group, the gRPC target group and HTTPS
//! listener, the rule on the tasks' group, and the ECS service attached to
//! the target group beside its Cloud Map registry. Then the table goes
//! (everything it made goes with it) and comes back for destroy.

mod aws_account;

use aws_account::{Account, list, text};
use serde_json::{Value, json};

const NAME: &str = "shop-game-server";

/// The ingress table on game-server, with `extra` lines.
fn with_ingress(certificate: &str, extra: &str) -> String {
    format!("depends_on = [\"ranking\"]\n\n[service.ingress]\ncertificate_arn = \"{certificate}\"\n{extra}")
}

/// Whether a plan has the step `words` (`create listener NAME`), however
/// its columns are padded.
fn has_step(plan: &str, words: &str) -> bool {
    plan.lines().any(|line| line.split_whitespace().skip(1).collect::<Vec<_>>().join(" ") == words)
}

impl Account {
    fn elb(&self, operation: &str, params: Value) -> Value {
        self.moto.boto3("elbv2", operation, params)
    }

    /// The load balancers called [`NAME`] (none, or one).
    fn load_balancers(&self) -> Vec<Value> {
        let all = self.elb("describe_load_balancers", json!({}));
        list(&all["LoadBalancers"]).into_iter().filter(|balancer| balancer["LoadBalancerName"] == NAME).collect()
    }

    fn target_groups(&self) -> Vec<Value> {
        let all = self.elb("describe_target_groups", json!({}));
        list(&all["TargetGroups"]).into_iter().filter(|group| group["TargetGroupName"] == NAME).collect()
    }

    /// A security group's TCP rules as (from port, to port, source), the
    /// source a CIDR (IPv4 or IPv6) or a group id.
    fn rules(&self, group: &Value) -> Vec<(u64, u64, String)> {
        let mut rules = Vec::new();
        for permission in list(&group["IpPermissions"]) {
            let ports = (permission["FromPort"].as_u64().unwrap(), permission["ToPort"].as_u64().unwrap());
            assert_eq!(permission["IpProtocol"], "tcp", "{permission}");
            for range in list(&permission["IpRanges"]) {
                rules.push((ports.0, ports.1, text(&range["CidrIp"])));
            }
            for range in list(&permission["Ipv6Ranges"]) {
                rules.push((ports.0, ports.1, text(&range["CidrIpv6"])));
            }
            for pair in list(&permission["UserIdGroupPairs"]) {
                rules.push((ports.0, ports.1, text(&pair["GroupId"])));
            }
        }
        rules.sort();
        rules
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingress_applies_to_a_grpc_load_balancer_plans_clean_and_goes_with_its_table() {
    let account = Account::new().await;
    account.route_to_the_internet();
    let certificate = account.moto.boto3("acm", "request_certificate", json!({"DomainName": "game.example.com"}));
    let certificate = text(&certificate["CertificateArn"]);
    let ingress =
        with_ingress(&certificate, "allow_cidrs = [\"203.0.113.0/24\", \"2001:db8::/32\"]\nidle_timeout_secs = 120\n");
    let stack = account.write_stack(&[("depends_on = [\"ranking\"]\n", &ingress)]);

    let planned = account.provision(&["plan"], &stack);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    for kind in ["load balancer", "target group", "listener"] {
        assert!(has_step(&planned.stdout, &format!("create {kind} {NAME}")), "{kind}: {}", planned.stdout);
    }
    assert!(planned.stdout.contains("its load balancer's DNS name is known once it is created"), "{}", planned.stdout);

    let applied = account.provision(&["apply", "--yes"], &stack);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);

    // The load balancer: internet-facing, in both (public) subnets, in its
    // own group, with the idle timeout.
    let balancers = account.load_balancers();
    assert_eq!(balancers.len(), 1, "{balancers:?}");
    let balancer = &balancers[0];
    assert_eq!(
        (balancer["Scheme"].as_str(), balancer["Type"].as_str()),
        (Some("internet-facing"), Some("application"))
    );
    let mut subnets: Vec<String> =
        list(&balancer["AvailabilityZones"]).iter().map(|zone| text(&zone["SubnetId"])).collect();
    subnets.sort();
    let mut ours = account.subnets.clone();
    ours.sort();
    assert_eq!(subnets, ours);
    let balancer_arn = text(&balancer["LoadBalancerArn"]);
    let attributes = account.elb("describe_load_balancer_attributes", json!({"LoadBalancerArn": balancer_arn}));
    assert!(
        list(&attributes["Attributes"]).contains(&json!({"Key": "idle_timeout.timeout_seconds", "Value": "120"})),
        "{attributes}"
    );
    let tags = account.elb("describe_tags", json!({"ResourceArns": [balancer_arn]}));
    assert!(list(&tags["TagDescriptions"][0]["Tags"]).contains(&json!({"Key": "app", "Value": "shop"})), "{tags}");

    // Its group admits 443 from the allowed CIDRs and nothing else.
    let groups = account.security_groups_named("shop-game-server-ingress").await;
    assert_eq!(groups.len(), 1);
    let ingress_group = text(&groups[0]["GroupId"]);
    assert_eq!(list(&balancer["SecurityGroups"]), [json!(ingress_group)]);
    assert_eq!(
        account.rules(&groups[0]),
        [(443, 443, "2001:db8::/32".to_owned()), (443, 443, "203.0.113.0/24".to_owned())]
    );

    // The target group speaks gRPC to the tasks' IPs and asks them the gRPC
    // health check, expecting status 0; it keeps a leaving task's calls as
    // long as DNS does (dns_ttl_secs 10, and a second).
    let groups = account.target_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let group = &groups[0];
    let port = group["Port"].as_u64().unwrap();
    assert_eq!(group["Protocol"], "HTTP");
    assert_eq!(group["ProtocolVersion"], "GRPC");
    assert_eq!(group["TargetType"], "ip");
    assert_eq!(group["HealthCheckPath"], "/grpc.health.v1.Health/Check");
    assert_eq!(group["Matcher"], json!({"GrpcCode": "0"}));
    assert_eq!(group["VpcId"], json!(account.vpc));
    let group_arn = text(&group["TargetGroupArn"]);
    let attributes = account.elb("describe_target_group_attributes", json!({"TargetGroupArn": group_arn}));
    assert!(
        list(&attributes["Attributes"])
            .contains(&json!({"Key": "deregistration_delay.timeout_seconds", "Value": "11"})),
        "{attributes}"
    );

    // One listener: HTTPS on 443 with the certificate and a TLS 1.3 policy,
    // forwarding to the group.
    let listeners = account.elb("describe_listeners", json!({"LoadBalancerArn": balancer_arn}));
    let listeners = list(&listeners["Listeners"]);
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    assert_eq!((listeners[0]["Port"].as_u64(), listeners[0]["Protocol"].as_str()), (Some(443), Some("HTTPS")));
    assert_eq!(list(&listeners[0]["Certificates"])[0]["CertificateArn"], json!(certificate));
    assert_eq!(listeners[0]["SslPolicy"], "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert_eq!(listeners[0]["DefaultActions"][0]["Type"], "forward");
    assert_eq!(listeners[0]["DefaultActions"][0]["TargetGroupArn"], json!(group_arn));

    // The tasks' group admits the load balancer's group on the service port
    // only; the service registers in the target group beside Cloud Map.
    let tasks = account.security_groups_named("shop-tasks").await;
    let from_balancer: Vec<(u64, u64, String)> =
        account.rules(&tasks[0]).into_iter().filter(|rule| rule.2 == ingress_group).collect();
    assert_eq!(from_balancer, [(port, port, ingress_group.clone())]);
    let service = account.service("game-server").await.unwrap();
    let attached = service.load_balancers();
    assert_eq!(attached.len(), 1, "{service:?}");
    assert_eq!(attached[0].target_group_arn(), Some(group_arn.as_str()));
    assert_eq!((attached[0].container_name(), attached[0].container_port()), (Some("service"), Some(port as i32)));
    assert_eq!(service.service_registries().len(), 1, "still in Cloud Map");
    assert!(account.service("ranking").await.unwrap().load_balancers().is_empty());

    let again = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(again.code, 0, "a second plan is clean: {}", again.stdout);
    let dns = text(&balancer["DNSName"]);
    assert!(again.stdout.contains(&format!("clients outside the VPC call {dns}:443")), "{}", again.stdout);
    let status = account.provision(&["status"], &stack);
    assert!(status.stdout.contains(&format!("game-server      {dns}:443  internet-facing")), "{}", status.stdout);

    // A changed certificate and CIDR are updated in place.
    let other = account.moto.boto3("acm", "request_certificate", json!({"DomainName": "play.example.com"}));
    let other = text(&other["CertificateArn"]);
    let changed = account.write_stack(&[(
        "depends_on = [\"ranking\"]\n",
        &with_ingress(&other, "allow_cidrs = [\"198.51.100.0/24\"]\n"),
    )]);
    let planned = account.provision(&["plan"], &changed);
    assert!(planned.stdout.contains(&format!("certificate: {certificate} -> {other}")), "{}", planned.stdout);
    assert_eq!(account.provision(&["apply", "--yes"], &changed).code, 0);
    let listeners = account.elb("describe_listeners", json!({"LoadBalancerArn": balancer_arn}));
    assert_eq!(list(&listeners["Listeners"])[0]["Certificates"][0]["CertificateArn"], json!(other));
    let groups = account.security_groups_named("shop-game-server-ingress").await;
    assert_eq!(account.rules(&groups[0]), [(443, 443, "198.51.100.0/24".to_owned())]);
    let balancer = &account.load_balancers()[0];
    assert_eq!(text(&balancer["LoadBalancerArn"]), balancer_arn, "changed in place, not replaced");

    // Without the table, everything it made goes, the service first lets
    // go of the target group, and the tasks' group stops admitting it.
    let without = account.write_stack(&[]);
    let planned = account.provision(&["plan"], &without);
    for kind in ["load balancer", "target group", "listener"] {
        assert!(has_step(&planned.stdout, &format!("delete {kind} {NAME}")), "{kind}: {}", planned.stdout);
    }
    assert!(has_step(&planned.stdout, "delete security group shop-game-server-ingress"), "{}", planned.stdout);
    let removed = account.provision(&["apply", "--yes"], &without);
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    assert!(account.load_balancers().is_empty());
    assert!(account.target_groups().is_empty());
    assert!(account.security_groups_named("shop-game-server-ingress").await.is_empty());
    assert!(account.service("game-server").await.unwrap().load_balancers().is_empty());
    let tasks = account.security_groups_named("shop-tasks").await;
    assert!(account.rules(&tasks[0]).iter().all(|rule| rule.2 != ingress_group), "{:?}", account.rules(&tasks[0]));
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &without).code, 0);

    // Back again, then destroy leaves none of it.
    let stack = account.write_stack(&[("depends_on = [\"ranking\"]\n", &ingress)]);
    assert_eq!(account.provision(&["apply", "--yes"], &stack).code, 0);
    assert_eq!(account.load_balancers().len(), 1);
    let destroyed = account.provision(&["destroy", "--yes"], &stack);
    assert_eq!(destroyed.code, 0, "{}\n{}", destroyed.stdout, destroyed.stderr);
    assert!(account.load_balancers().is_empty());
    assert!(account.target_groups().is_empty());
    assert!(account.security_groups_named("shop-game-server-ingress").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingress_without_two_public_subnets_or_with_a_bad_certificate_is_refused_before_any_change() {
    let account = Account::new().await;
    let certificate = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c";
    // The test VPC has no internet gateway: no public subnet.
    let stack = account.write_stack(&[("depends_on = [\"ranking\"]\n", &with_ingress(certificate, ""))]);
    let refused = account.provision(&["plan"], &stack);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("a load balancer needs subnets in at least two availability zones, and the VPC has 0 public"),
        "{}",
        refused.stderr
    );
    // Named subnets, or an internal one in the private subnets, plan.
    let internal =
        account.write_stack(&[("depends_on = [\"ranking\"]\n", &with_ingress(certificate, "scheme = \"internal\"\n"))]);
    let planned = account.provision(&["plan"], &internal);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    // `provision call --ingress` finds the load balancer on AWS, or says
    // why there is none to call.
    let call = account.provision(&["call", "game-server", "rpc.Rpc/GetChampion", "--ingress"], &internal);
    assert_eq!(call.code, 1);
    assert!(
        call.stderr.contains("load balancer shop-game-server of service \"game-server\" does not exist yet"),
        "{}",
        call.stderr
    );
    let call = account.provision(&["call", "ranking", "ranking.v1.Ranking/GetTop", "--ingress"], &internal);
    assert!(call.stderr.contains("service \"ranking\" has no [service.ingress] table"), "{}", call.stderr);
    let bad = account.write_stack(&[("depends_on = [\"ranking\"]\n", &with_ingress("my-cert", ""))]);
    let refused = account.provision(&["plan"], &bad);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("ingress.certificate_arn \"my-cert\" is not an ACM certificate ARN"),
        "{}",
        refused.stderr
    );
    assert!(account.load_balancers().is_empty());
}
