//! An emulated AWS account for the tests of `provision`'s AWS side: moto's
//! server on loopback with a VPC and two subnets of our own, the stack file
//! written into it, the real binary run against it, and clients (the SDK's
//! and boto3's) to check what it made.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ecs::types::{ServiceField, TaskDefinitionStatus};
use aws_smithy_http_client::{Builder, tls};
use serde_json::json;
use test_support::MotoServer;

pub const PROVISION: &str = env!("CARGO_BIN_EXE_provision");
pub const APP: &str = "shop";

/// One emulated account: the server, clients to look at it, and a folder
/// for the test's stack file.
pub struct Account {
    pub moto: MotoServer,
    pub config: aws_config::SdkConfig,
    pub dir: PathBuf,
    pub vpc: String,
    pub subnets: Vec<String>,
    /// The edits that give the stack every table, made once per account.
    every_table: std::sync::OnceLock<Vec<(String, String)>>,
}

/// What one run of `provision` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Account {
    /// A fresh account with a VPC and two subnets of our own.
    pub async fn new() -> Self {
        let moto = MotoServer::start();
        let http_client =
            Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring)).build_https();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .endpoint_url(moto.url())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await;
        let vpc = moto.boto3("ec2", "create_vpc", json!({"CidrBlock": "10.42.0.0/16"}));
        let vpc = text(&vpc["Vpc"]["VpcId"]);
        let mut subnets = Vec::new();
        for (index, zone) in ["us-east-1a", "us-east-1b"].into_iter().enumerate() {
            let subnet = moto.boto3(
                "ec2",
                "create_subnet",
                json!({"VpcId": vpc, "CidrBlock": format!("10.42.{index}.0/24"), "AvailabilityZone": zone}),
            );
            subnets.push(text(&subnet["Subnet"]["SubnetId"]));
        }
        let dir = std::env::temp_dir().join(format!(
            "provision-aws-{}-{}",
            std::process::id(),
            moto.url().replace([':', '/', '.'], "")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { moto, config, dir, vpc, subnets, every_table: std::sync::OnceLock::new() }
    }

    /// Writes the stack file (the shape of the committed one, in our VPC),
    /// after applying `edits` (pairs of text to replace).
    pub fn write_stack(&self, edits: &[(&str, &str)]) -> PathBuf {
        let mut text = STACK.replace("VPC", &self.vpc).replace("SUBNETS", &format!("{:?}", self.subnets));
        for (from, to) in edits {
            assert!(text.contains(from), "the stack has no {from:?} to replace");
            text = text.replacen(from, to, 1);
        }
        let path = self.dir.join("stack.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes a stack with every optional table (an ingress and
    /// autoscaling on game-server, a store for ranking, a pipeline) and a
    /// task role with three managed policies, after `edits`; routes the
    /// VPC to the internet for the load balancer (once).
    pub fn write_stack_with_every_table(&self, edits: &[(&str, &str)]) -> PathBuf {
        let every = self.every_table.get_or_init(|| self.every_table_edits());
        let mut all: Vec<(&str, &str)> = every.iter().map(|(from, to)| (from.as_str(), to.as_str())).collect();
        all.extend_from_slice(edits);
        self.write_stack(&all)
    }

    fn every_table_edits(&self) -> Vec<(String, String)> {
        self.route_to_the_internet();
        let certificate = self.moto.boto3("acm", "request_certificate", json!({"DomainName": "game.example.com"}));
        let exposed = format!(
            "depends_on = [\"ranking\"]\n\n[service.ingress]\ncertificate_arn = \"{}\"\n\n\
             [service.autoscaling]\nmin = 1\nmax = 3\ncpu_percent = 50\n",
            text(&certificate["CertificateArn"])
        );
        let pipeline = "log_retention_days = 14\n\n[pipeline]\nrepository = \"my-org/shop\"\nconnection_arn = \
                        \"arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e2d3c\"\n";
        let store = "\n[service.stores]\nRANKING_STORE = \"board\"\n\n[[store]]\nname = \"board\"\n";
        // Three managed policies on a task role: more than a page of two.
        let policies: Vec<String> = ["read", "write", "list"]
            .iter()
            .map(|name| {
                let statement = json!({"Effect": "Allow", "Action": format!("s3:{name}*"), "Resource": "*"});
                let document = json!({"Version": "2012-10-17", "Statement": [statement]});
                let made = self.moto.boto3(
                    "iam",
                    "create_policy",
                    json!({"PolicyName": format!("shop-{name}"), "PolicyDocument": document.to_string()}),
                );
                format!("{:?}", text(&made["Policy"]["Arn"]))
            })
            .collect();
        let attached = format!("stop_timeout_secs = 60\ntask_role_policies = [{}]", policies.join(", "));
        let secret =
            "secrets = { RANKING_STORE = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:ranking-store\" }\n";
        [
            ("log_retention_days = 14\n", pipeline),
            ("depends_on = [\"ranking\"]\n", exposed.as_str()),
            ("stop_timeout_secs = 60", attached.as_str()),
            (secret, store),
        ]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), to.to_owned()))
        .collect()
    }

    pub fn command(&self, args: &[&str], stack: &Path) -> Command {
        let mut command = Command::new(PROVISION);
        command.args(args).arg("--stack").arg(stack);
        // Every AWS_* variable of this machine's goes (a profile, web
        // identity, container credentials, per-service endpoints): the run
        // sees the emulator's endpoint and credentials and nothing else.
        for (var, _) in std::env::vars_os() {
            if var.to_str().is_some_and(|name| name.starts_with("AWS_")) {
                command.env_remove(&var);
            }
        }
        command.env_remove("PROVISION_STACK");
        // Colour as a pipe gets it, whatever this shell asks for.
        for var in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"] {
            command.env_remove(var);
        }
        command
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", self.dir.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("no-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        command
    }

    /// Runs `provision` to the end (with a deadline) and returns what it did.
    pub fn provision(&self, args: &[&str], stack: &Path) -> Run {
        run(self.command(args, stack))
    }

    /// Makes the VPC's subnets public: an internet gateway on the main
    /// route table, as a default VPC has.
    pub fn route_to_the_internet(&self) {
        let gateway = self.ec2("create_internet_gateway", json!({}));
        let gateway = text(&gateway["InternetGateway"]["InternetGatewayId"]);
        self.ec2("attach_internet_gateway", json!({"InternetGatewayId": gateway, "VpcId": self.vpc}));
        let filters =
            json!([{"Name": "vpc-id", "Values": [self.vpc]}, {"Name": "association.main", "Values": ["true"]}]);
        let tables = self.ec2("describe_route_tables", json!({ "Filters": filters }));
        let main = text(&tables["RouteTables"][0]["RouteTableId"]);
        self.ec2(
            "create_route",
            json!({"RouteTableId": main, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway}),
        );
    }
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.config)
    }

    pub fn cloud_map(&self) -> aws_sdk_servicediscovery::Client {
        aws_sdk_servicediscovery::Client::new(&self.config)
    }

    /// An EC2 call through boto3: the provisioner speaks EC2's Query API
    /// with its own client, so the tests check it with another.
    pub fn ec2(&self, operation: &str, params: serde_json::Value) -> serde_json::Value {
        self.moto.boto3("ec2", operation, params)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.config)
    }

    pub fn elasticache(&self) -> aws_sdk_elasticache::Client {
        aws_sdk_elasticache::Client::new(&self.config)
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    /// Pushes an image manifest into `repository`, as `docker push` would;
    /// returns its digest.
    pub async fn push_image(&self, repository: &str, tag: &str) -> String {
        // moto derives the digest from the layers' digests: one layer per tag.
        let layer = format!(
            "sha256:{:0>64}",
            format!("{:x}", tag.bytes().fold(repository.len() as u64, |h, b| h * 131 + u64::from(b)))
        );
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": layer },
            "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1024, "digest": layer }]
        });
        let answer = self
            .ecr()
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest.to_string())
            .image_tag(tag)
            .send()
            .await
            .unwrap();
        answer.image().unwrap().image_id().unwrap().image_digest().unwrap().to_owned()
    }

    /// The task definition ARNs of `family` with `status`.
    pub async fn revisions(&self, family: &str, status: TaskDefinitionStatus) -> Vec<String> {
        let answer = self.ecs().list_task_definitions().family_prefix(family).status(status).send().await.unwrap();
        answer.task_definition_arns().to_vec()
    }

    /// The Cloud Map namespaces called `name`.
    pub async fn namespaces_named(&self, name: &str) -> Vec<String> {
        let answer = self.cloud_map().list_namespaces().send().await.unwrap();
        answer
            .namespaces()
            .iter()
            .filter(|n| n.name() == Some(name))
            .filter_map(|n| n.id().map(str::to_owned))
            .collect()
    }

    /// The Cloud Map services of the namespace, by name (with duplicates).
    pub async fn discovery_services(&self, namespace_id: &str) -> Vec<aws_sdk_servicediscovery::types::ServiceSummary> {
        use aws_sdk_servicediscovery::types::{FilterCondition, ServiceFilter, ServiceFilterName};
        let filter = ServiceFilter::builder()
            .name(ServiceFilterName::NamespaceId)
            .values(namespace_id)
            .condition(FilterCondition::Eq)
            .build()
            .unwrap();
        self.cloud_map().list_services().filters(filter).send().await.unwrap().services().to_vec()
    }

    /// Security groups called `name` in our VPC.
    pub async fn security_groups_named(&self, name: &str) -> Vec<serde_json::Value> {
        let filters = json!([{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [self.vpc]}]);
        let answer = self.ec2("describe_security_groups", json!({ "Filters": filters }));
        answer["SecurityGroups"].as_array().cloned().unwrap_or_default()
    }

    pub async fn service(&self, name: &str) -> Option<aws_sdk_ecs::types::Service> {
        let answer =
            self.ecs().describe_services().cluster(APP).services(name).include(ServiceField::Tags).send().await.ok()?;
        answer.services().iter().find(|service| service.status() == Some("ACTIVE")).cloned()
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `command` to the end, killing it after two minutes: no test hangs.
pub fn run(mut command: Command) -> Run {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start provision");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("provision did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run { code: status.code().unwrap_or(-1), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    eprintln!("$ provision ... -> {}\n{}{}", run.code, run.stdout, run.stderr);
    run
}

/// The committed stack's shape, with a secret and our own network.
pub const STACK: &str = r#"
app = "shop"
namespace = "shop.internal"

[aws]
vpc = "VPC"
subnets = SUBNETS
cluster = "shop"
log_retention_days = 14

[[service]]
name = "game-server"
binary = "game-server"
count = 3
dns_ttl_secs = 10
depends_on = ["ranking"]

[service.env]
LOG_LEVEL = "info"

[service.aws]
cpu = 256
memory = 512
stop_timeout_secs = 60

[service.health_check]
command = ["game-server", "health"]
interval_secs = 5
timeout_secs = 2
retries = 3
start_period_secs = 10

[[service]]
name = "ranking"
binary = "ranking"
count = 2

[service.env]
LOG_LEVEL = "info"

[service.aws]
cpu = 256
memory = 512
architecture = "arm64"
secrets = { RANKING_STORE = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ranking-store" }
"#;

/// A JSON string's text; panics on anything else.
pub fn text(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

/// A JSON array's items; none when the field is absent.
pub fn list(value: &serde_json::Value) -> Vec<serde_json::Value> {
    value.as_array().cloned().unwrap_or_default()
}

pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("stdout of -o json is not one JSON document ({error}): {}", run.stdout))
}
