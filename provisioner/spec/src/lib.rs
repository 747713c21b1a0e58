//! `stack.toml`: one description of the stack for the local run and for
//! AWS. Everything is checked before anything starts, and every problem is
//! reported as `file:line: what`, naming the field.
//!
//! # Layout
//! - `lib.rs`: the stack, loading, the stores' cross-checks; `service.rs`: a
//!   `[[service]]` and how its replicas stop.
//! - One module per table: `health`, `autoscaling`, `ingress`, `aws` (the
//!   stack's and each service's `[aws]`), `store`, `pipeline`.

use std::{ops::Range, path::Path};

use serde::Deserialize;
use toml::Spanned;

pub mod autoscaling;
pub mod aws;
mod explain;
pub mod health;
pub mod ingress;
pub mod pipeline;
mod service;
pub mod store;

use aws::{AwsStack, RawAws, parse_aws};
use service::RawService;
pub use service::{Service, Stopping};
use store::{RawStore, Store};

/// A problem with the stack file, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}{message}", if *line > 0 { format!("{line}: ") } else { " ".to_owned() })]
pub struct SpecError {
    /// The file.
    pub file: String,
    /// 1-based line; 0 when the whole file is at fault.
    pub line: usize,
    /// What is wrong, naming the field and the value.
    pub message: String,
}

/// The validated stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The application's name: tags and resource names on AWS.
    pub app: String,
    /// The private DNS namespace: services are `<name>.<namespace>`.
    pub namespace: String,
    /// Where and how the stack runs on AWS.
    pub aws: AwsStack,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Redis stores in file order.
    pub stores: Vec<Store>,
    /// The delivery pipeline on AWS, if the stack has one.
    pub pipeline: Option<pipeline::Pipeline>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    app: Option<Spanned<String>>,
    namespace: Option<Spanned<String>>,
    aws: Option<Spanned<RawAws>>,
    #[serde(default, rename = "service")]
    services: Vec<Spanned<RawService>>,
    #[serde(default, rename = "store")]
    stores: Vec<Spanned<RawStore>>,
    pipeline: Option<Spanned<pipeline::RawPipeline>>,
}

/// Reads and validates the stack file at `path`.
pub fn load(path: &Path) -> Result<Stack, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|error| SpecError {
        file: path.display().to_string(),
        line: 0,
        message: format!(
            "cannot read the stack file: {error}{}",
            if error.kind() == std::io::ErrorKind::NotFound {
                " (run where stack.toml is, or name the file with --stack or PROVISION_STACK)"
            } else {
                ""
            }
        ),
    })?;
    parse(&text, &path.display().to_string())
}

pub(crate) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Parses and validates `text`; `file` is what errors call it.
pub fn parse(text: &str, file: &str) -> Result<Stack, SpecError> {
    let error = |span: Option<Range<usize>>, message: String| SpecError {
        file: file.to_owned(),
        line: span.map_or(1, |span| text[..span.start.min(text.len())].matches('\n').count() + 1),
        message,
    };
    let raw: RawStack = toml::from_str(text)
        .map_err(|e| error(e.span(), explain::explain(text, e.span().as_ref(), e.message().trim())))?;

    let app = match raw.app.clone() {
        Some(app) if is_dns_label(app.get_ref()) => app.into_inner(),
        Some(app) => {
            return Err(error(
                Some(app.span()),
                format!("app: {:?} must be lowercase letters, digits and '-'", app.get_ref()),
            ));
        }
        None => "grpc-fargate".to_owned(),
    };
    let namespace = match raw.namespace.clone() {
        Some(namespace) if namespace.get_ref().split('.').all(is_dns_label) => namespace.into_inner(),
        Some(namespace) => {
            return Err(error(
                Some(namespace.span()),
                format!("namespace: {:?} is not a DNS name", namespace.get_ref()),
            ));
        }
        None => "local".to_owned(),
    };
    let aws = parse_aws(raw.aws.as_ref(), &app, &error)?;
    if raw.services.is_empty() {
        return Err(error(None, "no [[service]]: the stack needs at least one".into()));
    }

    let mut services: Vec<(Service, Range<usize>)> = Vec::new();
    for spanned in &raw.services {
        let service = service::parse(spanned, &services, &error)?;
        services.push((service, spanned.span()));
    }

    service::check_dependencies(&raw.services, &services, &error)?;

    let stores = parse_stores(&raw, &services, &error)?;
    let pipeline = raw.pipeline.as_ref().map(|table| pipeline::parse(table, &error)).transpose()?;
    Ok(Stack {
        app,
        namespace,
        aws,
        services: services.into_iter().map(|(service, _)| service).collect(),
        stores,
        pipeline,
    })
}

/// The stores, each used by some service, and every service's stores
/// naming one of them through a variable of its own.
fn parse_stores(
    raw: &RawStack,
    services: &[(Service, Range<usize>)],
    error: &Locate<'_>,
) -> Result<Vec<Store>, SpecError> {
    let mut stores: Vec<Store> = Vec::new();
    for spanned in &raw.stores {
        let store = store::parse(spanned.get_ref(), error)?;
        let name_span = spanned.get_ref().name().span();
        if stores.iter().any(|other| other.name == store.name) {
            return Err(error(Some(name_span), format!("store name {:?} is used twice", store.name)));
        }
        if services.iter().any(|(service, _)| service.name == store.name) {
            return Err(error(Some(name_span), format!("store name {:?} is also a service's name", store.name)));
        }
        stores.push(store);
    }
    for spanned in &raw.services {
        let raw_service = spanned.get_ref();
        let name = raw_service.name.get_ref();
        let aws_secrets = raw_service.aws.as_ref().map(|aws| aws.secret_names()).unwrap_or_default();
        for (variable, store) in &raw_service.stores {
            let at = |message: String| error(Some(store.span()), format!("service {name:?}: {message}"));
            if variable.is_empty() || !variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(at(format!("stores: {variable:?} is not a variable name")));
            }
            if raw_service.env.contains_key(variable) || aws_secrets.contains(variable) {
                return Err(at(format!(
                    "stores.{variable} also stands in env or aws.secrets: the store's URL is the variable's value"
                )));
            }
            if !stores.iter().any(|candidate| &candidate.name == store.get_ref()) {
                let known: Vec<&str> = stores.iter().map(|store| store.name.as_str()).collect();
                return Err(at(format!(
                    "stores.{variable} names store {:?}, which is not in the stack (its stores: {})",
                    store.get_ref(),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                )));
            }
        }
    }
    for (store, spanned) in stores.iter().zip(&raw.stores) {
        let used = services.iter().any(|(service, _)| service.stores.values().any(|name| name == &store.name));
        if !used {
            return Err(error(
                Some(spanned.get_ref().name().span()),
                format!(
                    "store {:?} is used by no service: name it in a service's [service.stores], e.g. \
                     RANKING_STORE = {:?}",
                    store.name, store.name
                ),
            ));
        }
    }
    Ok(stores)
}

/// What `error` in [`parse`] is: a located error from a span and a message.
pub(crate) type Locate<'a> = dyn Fn(Option<Range<usize>>, String) -> SpecError + 'a;

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use super::{
        aws::{Architecture, Deployment, Subnets},
        *,
    };

    fn error_of(text: &str) -> String {
        parse(text, "stack.toml").expect_err("rejected").to_string()
    }

    #[test]
    fn the_committed_stack_file_is_valid() {
        let stack = load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack.toml"))).unwrap();
        let counts: Vec<_> = stack.services.iter().map(|service| (service.name.as_str(), service.count)).collect();
        assert_eq!(counts, [("game-server", 3), ("ranking", 2)]);
        assert_eq!(stack.namespace, "local");
        assert_eq!(stack.services[0].depends_on, ["ranking"]);
        assert_eq!(stack.services[1].addr_variable(), "RANKING_ADDR");
        assert_eq!(stack.services[0].dns_name(&stack.namespace), "game-server.local");
    }

    /// The committed stack.toml with the commented block that starts with
    /// `# {header}` (up to its first empty line) uncommented.
    fn committed_with(header: &str) -> String {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack.toml")).unwrap();
        let mut inside = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                inside = (inside || line == format!("# {header}")) && !line.is_empty();
                let line = if inside { line.strip_prefix("# ").unwrap_or(line) } else { line };
                line.to_owned()
            })
            .collect();
        assert!(lines.iter().any(|line| line == header), "no commented {header} in stack.toml");
        lines.join("\n")
    }

    #[test]
    fn the_committed_autoscaling_and_ingress_examples_are_valid_once_uncommented() {
        let stack = parse(&committed_with("[service.autoscaling]"), "stack.toml").unwrap();
        let scaling = stack.services[0].autoscaling.clone().expect("the example is on game-server");
        assert_eq!(
            (scaling.min, scaling.max, scaling.cpu_percent, scaling.memory_percent),
            (2, 6, Some(50.0), Some(80.0))
        );
        // The example's certificate ARN is a placeholder: it must be
        // replaced, and the parser says so.
        let error = parse(&committed_with("[service.ingress]"), "stack.toml").unwrap_err();
        assert!(
            error.message.contains("ingress.certificate_arn \"arn:aws:acm:us-east-1:123456789012:certificate/...\""),
            "{error}"
        );
        let filled = committed_with("[service.ingress]").replace("certificate/...", "certificate/0f1e2d3c");
        let ingress = parse(&filled, "stack.toml").unwrap().services[0].ingress.clone().expect("on game-server");
        assert_eq!(ingress.allow, ingress::Allow::Cidrs(vec!["0.0.0.0/0".into(), "::/0".into()]));
    }

    #[test]
    fn the_committed_pipeline_example_is_valid_once_its_connection_is_filled_in() {
        let error = parse(&committed_with("[pipeline]"), "stack.toml").unwrap_err();
        assert!(error.message.starts_with("pipeline.connection_arn \"arn:aws:codeconnections:"), "{error}");
        let filled = committed_with("[pipeline]").replace("connection/...", "connection/0f1e2d3c");
        let pipeline = parse(&filled, "stack.toml").unwrap().pipeline.expect("the example");
        assert_eq!(
            (pipeline.repository.as_str(), pipeline.branch.as_str(), pipeline.compute_type.as_str()),
            ("my-org/grpc-fargate", "main", "BUILD_GENERAL1_MEDIUM")
        );
        assert_eq!((pipeline.image.as_str(), pipeline.timeout_minutes), (pipeline::DEFAULT_IMAGE, 60));
        assert_eq!(pipeline.deploys, pipeline::Deploys::Images, "images only unless the stack file says so");
    }

    #[test]
    fn a_pipeline_table_is_checked_with_its_line() {
        let connection = "connection_arn = \"arn:aws:codestar-connections:us-east-1:123456789012:connection/0f1e\"";
        let stack = |table: &str| format!("[[service]]\nname = \"svc\"\n\n[pipeline]\n{table}\n");
        let error =
            parse(&stack(&format!("repository = \"org/repo\"\n{connection}\ncompute_type = \"HUGE\"")), "stack.toml")
                .unwrap_err();
        assert_eq!(error.line, 7);
        assert!(
            error.message.starts_with("pipeline.compute_type \"HUGE\" is not one of BUILD_GENERAL1_SMALL"),
            "{error}"
        );
        let error = parse(&stack(connection), "stack.toml").unwrap_err();
        assert_eq!(error.line, 4);
        assert!(error.message.starts_with("pipeline.repository is missing"), "{error}");
        let error = parse(&stack("repository = \"org/repo\""), "stack.toml").unwrap_err();
        assert!(error.message.contains("codeconnections create-connection"), "{error}");
        let error =
            parse(&stack(&format!("repository = \"org/repo\"\n{connection}\ntimeout_minutes = 3")), "stack.toml")
                .unwrap_err();
        assert!(error.message.contains("timeout_minutes 3 is outside 5..=2160"), "{error}");
        assert!(
            parse(&stack(&format!("repository = \"org/repo\"\n{connection}\nbranch = \"release/2\"")), "stack.toml")
                .is_ok()
        );
        let error = parse(&stack(&format!("repository = \"org/repo\"\n{connection}\ndeploys = \"all\"")), "stack.toml")
            .unwrap_err();
        assert_eq!(error.line, 7);
        assert!(error.message.starts_with("pipeline.deploys \"all\" is not \"images\""), "{error}");
        let whole =
            parse(&stack(&format!("repository = \"org/repo\"\n{connection}\ndeploys = \"stack\"")), "stack.toml");
        assert_eq!(whole.unwrap().pipeline.unwrap().deploys, pipeline::Deploys::Stack);
    }

    #[test]
    fn the_aws_side_defaults_to_a_default_vpc_and_small_fargate_tasks() {
        let stack = parse("[[service]]\nname = \"svc\"\n", "stack.toml").unwrap();
        assert_eq!(stack.aws.vpc, "default");
        assert_eq!(stack.aws.subnets, Subnets::Private);
        assert_eq!(stack.aws.cluster, "grpc-fargate");
        assert!(!stack.aws.assign_public_ip);
        assert_eq!(stack.aws.base_image, aws::DEFAULT_BASE_IMAGE);
        let aws = &stack.services[0].aws;
        assert_eq!((aws.cpu, aws.memory, aws.architecture), (256, 512, Architecture::X86_64));
        // What the drain needs: TTL 10 + age 30 (+10%) + 1 = 44, then 10 s of
        // grace, then a second before SIGKILL.
        assert_eq!(aws.stop_timeout, Duration::from_secs(55));
        assert_eq!(
            aws.deployment,
            Deployment { minimum_healthy_percent: 100, maximum_percent: 200, circuit_breaker: true, rollback: true }
        );
    }

    #[test]
    fn aws_settings_are_checked_against_what_aws_accepts() {
        let service = |aws: &str| format!("[[service]]\nname = \"svc\"\n[service.aws]\n{aws}\n");
        assert!(
            error_of(&service("cpu = 300"))
                .starts_with("stack.toml:4: service \"svc\": aws.cpu 300 is not a Fargate size")
        );
        assert_eq!(
            error_of(&service("cpu = 256\nmemory = 4096")),
            "stack.toml:5: service \"svc\": aws.memory 4096 MiB is not offered with aws.cpu 256: with aws.cpu 256 \
             Fargate offers 512, 1024 or 2048 MiB; 4096 MiB needs aws.cpu = 512"
        );
        assert!(error_of(&service("cpu = 1024\nmemory = 2500")).ends_with(
            "with aws.cpu 1024 Fargate offers 2048 to 8192 MiB in steps of 1024; no cpu is offered with 2500 MiB"
        ));
        assert!(parse(&service("cpu = 1024\nmemory = 3072\narchitecture = \"arm64\""), "stack.toml").is_ok());
        let stuck = "[[service]]\nname = \"svc\"\n[service.aws.deployment]\nminimum_healthy_percent = 100\n\
                     maximum_percent = 100\n";
        let error = error_of(stuck);
        assert!(error.starts_with("stack.toml:5: service \"svc\": aws.deployment cannot keep 100%"), "{error}");
        assert!(error.ends_with("raise maximum_percent (e.g. 200) or lower minimum_healthy_percent"), "{error}");
        assert!(error_of(&service("stop_timeout_secs = 300")).contains("outside 2..=120"));
        let short = "[[service]]\nname = \"svc\"\ndns_ttl_secs = 20\n[service.aws]\nstop_timeout_secs = 30\n";
        assert_eq!(
            error_of(short),
            "stack.toml:5: service \"svc\": aws.stop_timeout_secs (30) is too short: a stopping replica answers for \
             up to 54 s (dns_ttl_secs 20 + max_connection_age_secs 30 with 10% jitter + 1) and exits within 64 s (+ \
             max_connection_age_grace_secs 10), so it must be at least 65 (or leave it out: that is the default)"
        );
        // A short age drains until grpc-core may have resolved again.
        let shorter_age = "[[service]]\nname = \"svc\"\ndns_ttl_secs = 20\nmax_connection_age_secs = 5\n\
                           max_connection_age_grace_secs = 2\n[service.aws]\nstop_timeout_secs = 54\n";
        assert_eq!(
            parse(shorter_age, "stack.toml").unwrap().services[0].stopping().stop_timeout,
            Duration::from_secs(54)
        );
        assert!(
            error_of(&shorter_age.replace("= 54", "= 30"))
                .contains("max_connection_age_secs 5 with 10% jitter, at least 30 s: grpc-core resolves at most that")
        );
        let too_long = "[[service]]\nname = \"svc\"\ndns_ttl_secs = 100\n";
        assert!(
            error_of(too_long).contains("which needs a stopTimeout of 145 s, more than Fargate's 120: lower"),
            "{}",
            error_of(too_long)
        );
        assert!(
            error_of("[[service]]\nname = \"svc\"\nmax_connection_age_secs = -1\n")
                .contains("stack.toml:3: service \"svc\": max_connection_age_secs -1 is outside 0..=3600")
        );
        assert!(
            error_of(&service("secrets = { DB = \"hunter2\" }"))
                .contains("is not a Secrets Manager or SSM parameter ARN")
        );
        let clash = "[[service]]\nname = \"svc\"\n[service.env]\nDB = \"x\"\n[service.aws]\nsecrets = { DB = \"arn:aws:ssm:us-east-1:1:parameter/db\" }\n";
        assert!(error_of(clash).contains("also set in env"));
        assert!(
            error_of(&service("[service.aws.deployment]\nmaximum_percent = 100")).contains("could never start a task")
        );
        assert!(
            error_of("[aws]\nvpc = \"my-vpc\"\n[[service]]\nname = \"svc\"\n").starts_with("stack.toml:2: aws.vpc")
        );
        assert!(error_of("[aws]\nregion = \"mars\"\n[[service]]\nname = \"svc\"\n").contains("not a region name"));
        assert!(
            error_of("[aws]\nlog_retention_days = 10\n[[service]]\nname = \"svc\"\n")
                .contains("is not one CloudWatch allows")
        );
        let ids = "[aws]\nvpc = \"vpc-0a1b\"\nsubnets = [\"subnet-01\", \"subnet-02\"]\n[[service]]\nname = \"svc\"\n";
        assert_eq!(
            parse(ids, "stack.toml").unwrap().aws.subnets,
            Subnets::Ids(vec!["subnet-01".into(), "subnet-02".into()])
        );
        let base = "[aws]\nbase_image = \"127.0.0.1:5000/base:v1\"\n[[service]]\nname = \"svc\"\n";
        assert_eq!(parse(base, "stack.toml").unwrap().aws.base_image, "127.0.0.1:5000/base:v1");
        assert_eq!(
            error_of("[aws]\nbase_image = \"base@sha256:12\"\n[[service]]\nname = \"svc\"\n"),
            "stack.toml:2: aws.base_image: \"base@sha256:12\" is not an image reference (REGISTRY/REPOSITORY:TAG or \
             @sha256:DIGEST)"
        );
        assert!(
            error_of("[aws]\nallow_from = [\"0.0.0.0/0\"]\n[[service]]\nname = \"svc\"\n")
                .starts_with("stack.toml:2: aws.allow_from: \"0.0.0.0/0\" is not a security group id")
        );
        assert!(
            error_of(&service("task_role_policies = [\"AmazonS3ReadOnlyAccess\"]"))
                .starts_with("stack.toml:4: service \"svc\": aws.task_role_policies: \"AmazonS3ReadOnlyAccess\"")
        );
        let tagged = "[aws.tags]\nteam = \"games\"\n\"cost:center\" = \"42\"\n[[service]]\nname = \"svc\"\n";
        assert_eq!(
            parse(tagged, "stack.toml").unwrap().aws.tags,
            BTreeMap::from([("team".to_owned(), "games".to_owned()), ("cost:center".to_owned(), "42".to_owned())])
        );
        assert_eq!(
            error_of("[aws.tags]\nteam = \"games\"\napp = \"other\"\n[[service]]\nname = \"svc\"\n"),
            "stack.toml:3: aws.tags: \"app\" is set by provision itself (it marks the resources as this app's)"
        );
        assert!(
            error_of("[aws.tags]\n\"aws:x\" = \"1\"\n[[service]]\nname = \"svc\"\n")
                .starts_with("stack.toml:2: aws.tags: \"aws:x\": keys starting with aws: are reserved")
        );
        assert!(
            error_of("[aws.tags]\nteam = \"a,b\"\n[[service]]\nname = \"svc\"\n")
                .starts_with("stack.toml:2: aws.tags.team: value \"a,b\" must be")
        );
        let many: String = (0..49).map(|i| format!("t{i} = \"v\"\n")).collect();
        assert!(error_of(&format!("[aws.tags]\n{many}[[service]]\nname = \"svc\"\n")).contains("49 tags"));
        let granted = service("task_role_policies = [\"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\"]");
        assert_eq!(
            parse(&granted, "stack.toml").unwrap().services[0].aws.task_role_policies,
            ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
        );
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let stack = parse("[[service]]\nname = \"svc\"\n", "stack.toml").unwrap();
        let service = &stack.services[0];
        assert_eq!((service.binary.as_str(), service.port, service.count), ("svc", 5000, 1));
        assert_eq!(service.health_check.command, ["svc", "health"]);
        assert_eq!(service.dns_ttl, Duration::from_secs(10));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_line() {
        assert!(
            error_of("[[service]]\nname = \"svc\"\ncolour = 1\n")
                .starts_with("stack.toml:3: unknown key `colour` in [[service]]: the keys there are name, binary")
        );
        assert!(
            error_of("[[service]]\nname = \"svc\"\ndns_ttl = 1\n")
                .starts_with("stack.toml:3: unknown key `dns_ttl` in [[service]]: did you mean `dns_ttl_secs`?")
        );
        assert_eq!(
            error_of("[[service]]\nname = \"svc\"\ncount = \"3\"\n"),
            "stack.toml:3: count takes a whole number, not the string \"3\": write count = 3, without quotes"
        );
        assert!(error_of("[[service]]\nname = \"svc\"\nport = \"http\"\n").starts_with("stack.toml:3: port takes"));
        let missing = load(Path::new("/nonexistent/stack.toml")).unwrap_err().to_string();
        assert!(missing.starts_with("/nonexistent/stack.toml: cannot read the stack file: "), "{missing}");
        assert!(missing.ends_with("name the file with --stack or PROVISION_STACK)"), "{missing}");
    }

    #[test]
    fn impossible_values_are_rejected_with_the_field() {
        assert_eq!(
            error_of("[[service]]\nname = \"svc\"\nport = 70000\n"),
            "stack.toml:3: service \"svc\": port 70000 is outside 1..=65535"
        );
        assert_eq!(
            error_of("[[service]]\nname = \"svc\"\n[[service]]\nname = \"svc\"\n"),
            "stack.toml:4: service name \"svc\" is used twice"
        );
        let text = "[[service]]\nname = \"game\"\ndepends_on = [\"rank\"]\n[[service]]\nname = \"rank\"\ncount = 0\n";
        assert_eq!(error_of(text), "stack.toml:4: service \"rank\": count is 0 but \"game\" depends on it");
        assert!(error_of("[[service]]\nname = \"game\"\ndepends_on = [\"nope\"]\n").contains("not in the stack"));
        assert!(error_of("[[service]]\nname = \"Game_Server\"\n").contains("must be a DNS label"));
        assert!(error_of("").contains("no [[service]]"));
    }

    #[test]
    fn autoscaling_bounds_the_count_and_needs_a_target() {
        let service =
            |count: &str, table: &str| format!("[[service]]\nname = \"svc\"\n{count}[service.autoscaling]\n{table}\n");
        let stack = parse(&service("count = 2\n", "min = 1\nmax = 4\ncpu_percent = 50"), "stack.toml").unwrap();
        let scaling = stack.services[0].autoscaling.clone().unwrap();
        assert_eq!((scaling.min, scaling.max, scaling.cpu_percent, scaling.memory_percent), (1, 4, Some(50.0), None));
        assert_eq!(
            (scaling.scale_out_cooldown, scaling.scale_in_cooldown),
            (Duration::from_secs(60), Duration::from_secs(120))
        );
        assert_eq!(scaling.targets(), [(autoscaling::Metric::Cpu, 50.0)]);
        assert_eq!(parse("[[service]]\nname = \"svc\"\n", "stack.toml").unwrap().services[0].autoscaling, None);

        assert_eq!(
            error_of(&service("count = 5\n", "min = 1\nmax = 4\ncpu_percent = 50")),
            "stack.toml:3: service \"svc\": count 5 is outside autoscaling.min..=max (1..=4): count is where the \
             service starts"
        );
        // Without a count, the default 1 must fit too; the table is the place.
        assert!(
            error_of(&service("", "min = 2\nmax = 4\ncpu_percent = 50"))
                .starts_with("stack.toml:3: service \"svc\": count 1 (the default) is outside")
        );
        assert_eq!(
            error_of(&service("", "min = 3\nmax = 2\ncpu_percent = 50")),
            "stack.toml:5: service \"svc\": autoscaling.max 2 is below autoscaling.min 3"
        );
        assert_eq!(
            error_of(&service("", "min = 1\nmax = 2\ncpu_percent = 150")),
            "stack.toml:6: service \"svc\": autoscaling.cpu_percent 150 is outside 1..=100"
        );
        assert!(
            error_of(&service("", "min = 1\nmax = 2")).contains("autoscaling needs a target to track"),
            "{}",
            error_of(&service("", "min = 1\nmax = 2"))
        );
        assert!(
            error_of(&service("", "min = 1\nmax = 300\ncpu_percent = 50"))
                .contains("autoscaling.max 300 is outside 1..=250")
        );
        assert!(
            error_of(&service("", "min = 1\nmax = 2\nmemory_percent = 80\nscale_in_cooldown_secs = -5"))
                .starts_with("stack.toml:7: service \"svc\": autoscaling.scale_in_cooldown_secs -5 is outside")
        );
        assert!(
            error_of(&service("", "min = 1\nmax = 2\ncpu = 50"))
                .contains("unknown key `cpu` in [service.autoscaling]: did you mean `cpu_percent`?")
        );
        let depended = "[[service]]\nname = \"game\"\ndepends_on = [\"rank\"]\n[[service]]\nname = \"rank\"\n\
                        [service.autoscaling]\nmin = 0\nmax = 2\ncpu_percent = 50\n";
        assert_eq!(
            error_of(depended),
            "stack.toml:4: service \"rank\": autoscaling.min is 0 but \"game\" depends on it"
        );
    }

    #[test]
    fn an_ingress_needs_a_certificate_and_defaults_to_the_internet_on_443() {
        let service = |table: &str| format!("[[service]]\nname = \"svc\"\n[service.ingress]\n{table}\n");
        let certificate = "certificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/0abc\"";
        let ingress = parse(&service(certificate), "stack.toml").unwrap().services[0].ingress.clone().unwrap();
        assert_eq!(
            (ingress.scheme, &ingress.allow, &ingress.subnets, ingress.idle_timeout),
            (
                ingress::Scheme::InternetFacing,
                &ingress::Allow::Anywhere,
                &ingress::IngressSubnets::ForScheme,
                Duration::from_secs(60)
            )
        );
        let internal = parse(&service(&format!("{certificate}\nscheme = \"internal\"")), "stack.toml").unwrap();
        assert_eq!(internal.services[0].ingress.as_ref().unwrap().allow, ingress::Allow::Vpc);
        assert_eq!(parse("[[service]]\nname = \"svc\"\n", "stack.toml").unwrap().services[0].ingress, None);

        assert!(error_of(&service("scheme = \"internal\"")).starts_with(
            "stack.toml:3: service \"svc\": ingress.certificate_arn is missing: an ALB carries gRPC only on an HTTPS"
        ));
        assert!(
            error_of(&service("certificate_arn = \"my-cert\""))
                .starts_with("stack.toml:4: service \"svc\": ingress.certificate_arn \"my-cert\" is not an ACM")
        );
        assert_eq!(
            error_of(&service(&format!("{certificate}\nallow_cidrs = [\"10.0.0.0/8\", \"office\"]"))),
            "stack.toml:5: service \"svc\": ingress.allow_cidrs: \"office\" is not a CIDR block like 203.0.113.0/24"
        );
        assert!(error_of(&service(&format!("{certificate}\nscheme = \"public\""))).contains("is not one of"));
        assert!(error_of(&service(&format!("{certificate}\nsubnets = [\"subnet-0a\"]"))).contains("at least two"));
        assert!(error_of(&service(&format!("{certificate}\nidle_timeout_secs = 0"))).contains("outside 1..=4000"));
        assert!(
            error_of(&service(&format!("{certificate}\nport = 443")))
                .contains("unknown key `port` in [service.ingress]")
        );
    }

    #[test]
    fn a_store_is_named_by_the_services_that_use_it_and_used_by_one() {
        let text = "[[service]]\nname = \"ranking\"\n[service.stores]\nRANKING_STORE = \"board\"\n\
                    [[store]]\nname = \"board\"\n[store.aws]\nengine = \"redis\"\nreplicas = 0\n";
        let stack = parse(text, "stack.toml").unwrap();
        assert_eq!(stack.services[0].stores, BTreeMap::from([("RANKING_STORE".to_owned(), "board".to_owned())]));
        let store = &stack.stores[0];
        assert_eq!((store.name.as_str(), store.port), ("board", 6379));
        assert_eq!((store.aws.engine, store.aws.replicas), (store::Engine::Redis, 0));
        assert_eq!(store.aws.node_type, "cache.t4g.micro");

        let committed = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stack.toml")).unwrap();
        assert_eq!(committed.stores[0].aws.engine, store::Engine::Valkey);

        let unknown = "[[service]]\nname = \"ranking\"\n[service.stores]\nRANKING_STORE = \"nope\"\n";
        assert_eq!(
            error_of(unknown),
            "stack.toml:4: service \"ranking\": stores.RANKING_STORE names store \"nope\", which is not in the \
             stack (its stores: none)"
        );
        let unused = "[[service]]\nname = \"ranking\"\n\n[[store]]\nname = \"board\"\n";
        assert_eq!(
            error_of(unused),
            "stack.toml:5: store \"board\" is used by no service: name it in a service's [service.stores], e.g. \
             RANKING_STORE = \"board\""
        );
        let both = "[[service]]\nname = \"ranking\"\n[service.env]\nRANKING_STORE = \"memory\"\n\
                    [service.stores]\nRANKING_STORE = \"board\"\n[[store]]\nname = \"board\"\n";
        assert!(error_of(both).contains("stores.RANKING_STORE also stands in env"), "{}", error_of(both));
        let engine = "[[service]]\nname = \"r\"\n[service.stores]\nS = \"b\"\n[[store]]\nname = \"b\"\n\
                      [store.aws]\nengine = \"memcached\"\n";
        assert_eq!(
            error_of(engine),
            "stack.toml:8: store \"b\": aws.engine \"memcached\" is not one of \"valkey\", \"redis\""
        );
        let replicas = engine.replace("engine = \"memcached\"", "replicas = 6");
        assert!(error_of(&replicas).starts_with("stack.toml:8: store \"b\": aws.replicas 6 is outside 0..=5"));
        let old_redis = engine.replace("engine = \"memcached\"", "engine = \"redis\"\nengine_version = \"6.2\"");
        assert!(
            error_of(&old_redis).starts_with(
                "stack.toml:9: store \"b\": aws.engine_version \"6.2\" is older than 7.0, which the ranking needs"
            ),
            "{}",
            error_of(&old_redis)
        );
        let recent = engine.replace("engine = \"memcached\"", "engine = \"redis\"\nengine_version = \"7.1\"");
        assert_eq!(parse(&recent, "stack.toml").unwrap().stores[0].aws.engine_version.as_deref(), Some("7.1"));
    }
}
