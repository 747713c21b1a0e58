//! `provision plan | apply | status | destroy` run as the real binary
//! against moto's server, a real AWS API emulator on loopback. Every test
//! has its own server, makes the VPC and subnets a user's account would
//! have, and checks the outcome through the AWS API itself.

mod aws_account;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
};

use aws_account::{APP, Account, Run, json, list, run, text};
use aws_sdk_ecs::types::{ClusterField, TaskDefinitionField, TaskDefinitionStatus};
use serde_json::json;
use test_support::FaultProxy;

#[tokio::test(flavor = "multi_thread")]
async fn plan_on_an_empty_account_then_apply_creates_everything_and_a_second_plan_is_clean() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);

    let plan = account.provision(&["plan", "--output", "json", "--detailed-exitcode"], &stack);
    assert_eq!(plan.code, 2, "changes pending -> exit 2");
    let plan = json(&plan);
    test_support::assert_matches_schema("plan", &plan);
    assert_eq!(plan["summary"]["create"], 17, "{plan:#}");
    assert_eq!(plan["summary"]["unchanged"], 0);
    assert_eq!(plan["vpc"], account.vpc.as_str());
    let notes = plan["notes"].to_string();
    assert!(notes.contains("no image in ECR repository shop/game-server yet"), "{notes}");
    // Plan makes no write call.
    assert!(account.namespaces_named("shop.internal").await.is_empty());
    assert!(account.service("game-server").await.is_none());

    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(apply.stdout.contains("17 to create"), "apply shows the plan first");

    // The cluster: Container Insights, both Fargate capacity providers, tags.
    let clusters = account
        .ecs()
        .describe_clusters()
        .clusters(APP)
        .include(ClusterField::Settings)
        .include(ClusterField::Tags)
        .send()
        .await
        .unwrap();
    let cluster = &clusters.clusters()[0];
    assert_eq!(cluster.status(), Some("ACTIVE"));
    assert!(cluster.settings().iter().any(|s| s.value() == Some("enabled")), "{cluster:?}");
    let mut providers = cluster.capacity_providers().to_vec();
    providers.sort();
    assert_eq!(providers, ["FARGATE", "FARGATE_SPOT"]);
    let tags: BTreeMap<_, _> = cluster.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert_eq!(tags.get("app"), Some(&APP));
    assert_eq!(tags.get("managed-by"), Some(&"provision"));

    // One namespace; a MULTIVALUE A+SRV service per ECS service, TTL from the stack.
    let namespaces = account.namespaces_named("shop.internal").await;
    assert_eq!(namespaces.len(), 1);
    let discovery = account.discovery_services(&namespaces[0]).await;
    assert_eq!(discovery.len(), 2);
    for summary in &discovery {
        let service = account.cloud_map().get_service().id(summary.id().unwrap()).send().await.unwrap();
        let service = service.service().unwrap();
        let dns = service.dns_config().unwrap();
        assert_eq!(dns.routing_policy().unwrap().as_str(), "MULTIVALUE");
        let mut records: Vec<_> = dns.dns_records().iter().map(|r| (r.r#type().as_str().to_owned(), r.ttl())).collect();
        records.sort();
        assert_eq!(records, [("A".to_owned(), 10), ("SRV".to_owned(), 10)]);
        assert!(service.health_check_custom_config().is_some());
    }

    // The security group: service ports from itself only, nothing from anywhere.
    let groups = account.security_groups_named("shop-tasks").await;
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    let permissions = list(&group["IpPermissions"]);
    for permission in &permissions {
        assert!(list(&permission["IpRanges"]).iter().all(|range| range["CidrIp"] != "0.0.0.0/0"), "{permission}");
        assert_eq!(permission["FromPort"], 5000);
        assert_eq!(permission["UserIdGroupPairs"][0]["GroupId"], group["GroupId"]);
    }
    assert_eq!(permissions.len(), 1);

    // Roles: the execution role may read the named secret and no other.
    let policy =
        account.iam().get_role_policy().role_name("shop-execution").policy_name("provision").send().await.unwrap();
    let policy = percent_decode(policy.policy_document());
    assert!(policy.contains("secret:ranking-store"), "{policy}");
    assert!(policy.contains("arn:aws:logs:*:123456789012:log-group:/ecs/shop/*"), "{policy}");
    assert!(policy.contains("arn:aws:ecr:*:123456789012:repository/shop/*"), "{policy}");
    for role in ["shop-game-server-task", "shop-ranking-task"] {
        let attached = account.iam().list_attached_role_policies().role_name(role).send().await.unwrap();
        assert!(attached.attached_policies().is_empty(), "a task role has no policy unless the stack grants one");
        let inline = account.iam().list_role_policies().role_name(role).send().await.unwrap();
        assert!(inline.policy_names().is_empty());
    }

    // Log groups with the stack's retention; repositories with their settings.
    let groups = account.logs().describe_log_groups().log_group_name_prefix("/ecs/shop/").send().await.unwrap();
    let retention: Vec<_> =
        groups.log_groups().iter().map(|g| (g.log_group_name().unwrap(), g.retention_in_days())).collect();
    assert_eq!(retention, [("/ecs/shop/game-server", Some(14)), ("/ecs/shop/ranking", Some(14))]);
    let repositories = account.ecr().describe_repositories().send().await.unwrap();
    assert_eq!(repositories.repositories().len(), 2);
    for repository in repositories.repositories() {
        assert_eq!(repository.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
        assert!(repository.image_scanning_configuration().unwrap().scan_on_push());
        let lifecycle = account
            .ecr()
            .get_lifecycle_policy()
            .repository_name(repository.repository_name().unwrap())
            .send()
            .await
            .unwrap();
        assert!(lifecycle.lifecycle_policy_text().unwrap().contains("imageCountMoreThan"));
    }

    // Task definitions: Fargate, awsvpc, health check by the binary's `health`, gRPC port, secrets apart.
    let definition = account
        .ecs()
        .describe_task_definition()
        .task_definition("shop-game-server")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let definition = definition.task_definition().unwrap();
    assert_eq!(definition.network_mode().unwrap().as_str(), "awsvpc");
    assert_eq!((definition.cpu(), definition.memory()), (Some("256"), Some("512")));
    let container = &definition.container_definitions()[0];
    assert_eq!(container.health_check().unwrap().command(), ["CMD", "/usr/local/bin/service", "health"]);
    assert_eq!(container.port_mappings()[0].container_port(), Some(5000));
    assert_eq!(container.port_mappings()[0].app_protocol().unwrap().as_str(), "grpc");
    assert_eq!(container.stop_timeout(), Some(60));
    let environment: BTreeMap<_, _> =
        container.environment().iter().map(|p| (p.name().unwrap(), p.value().unwrap())).collect();
    assert_eq!(environment.get("RANKING_ADDR"), Some(&"dns:///ranking.shop.internal:5000"));
    // Connections age out after 30 s (+/-10%); a stopping task drains past
    // the DNS TTL and one whole connection age, and exits before stopTimeout.
    assert_eq!(environment.get("DNS_TTL_SECS"), Some(&"10"));
    assert_eq!(environment.get("MAX_CONNECTION_AGE_SECS"), Some(&"30"));
    assert_eq!(environment.get("MAX_CONNECTION_AGE_GRACE_SECS"), Some(&"10"));
    assert_eq!(environment.get("DRAIN_SECS"), Some(&"44"));
    assert_eq!(environment.get("SHUTDOWN_TIMEOUT_SECS"), Some(&"59"));
    let ranking = account.ecs().describe_task_definition().task_definition("shop-ranking").send().await.unwrap();
    let ranking = ranking.task_definition().unwrap();
    let container = &ranking.container_definitions()[0];
    assert_eq!(container.secrets()[0].name(), "RANKING_STORE");
    assert!(
        container.environment().iter().all(|pair| pair.name() != Some("RANKING_STORE")),
        "a secret is never plain environment"
    );
    assert_eq!(ranking.runtime_platform().unwrap().cpu_architecture().unwrap().as_str(), "ARM64");

    // ECS services: in Cloud Map, in our subnets and group, held at 0 without an image.
    let service = account.service("game-server").await.expect("game-server service");
    assert_eq!(service.desired_count(), 0);
    assert_eq!(service.service_registries().len(), 1);
    assert_eq!(service.service_registries()[0].port(), Some(5000));
    let network = service.network_configuration().unwrap().awsvpc_configuration().unwrap();
    let mut subnets = network.subnets().to_vec();
    subnets.sort();
    let mut ours = account.subnets.clone();
    ours.sort();
    assert_eq!(subnets, ours);
    assert_eq!(network.security_groups(), [text(&group["GroupId"])]);
    assert_eq!(network.assign_public_ip().unwrap().as_str(), "DISABLED");

    let again = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(again.code, 0, "a second plan has nothing to do: {}", again.stdout);
    assert!(
        again.stdout.contains("No changes: AWS matches the stack file (17 resources unchanged)."),
        "{}",
        again.stdout
    );
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0);
    assert!(apply.stdout.contains("The stack is up to date."), "{}", apply.stdout);
    assert_eq!(account.revisions("shop-game-server", TaskDefinitionStatus::Active).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_field_is_planned_and_applied_as_exactly_that_update() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);

    // The first images arrive: the services get them and their counts.
    let game = account.push_image("shop/game-server", "v1").await;
    account.push_image("shop/ranking", "v1").await;
    let plan = account.provision(&["plan"], &stack);
    assert!(
        plan.stdout.contains(&format!(
            "image: none (not deployed yet) -> 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/game-server@{game}"
        )),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("desired_count: 0 -> 3"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("no image in ECR repository"), "no service is held back any more");
    // How a task stops, derived from the TTL and the connection age.
    assert!(
        plan.stdout.contains(
            "note: game-server: a stopping task answers for up to 44 s (DNS TTL 10 s, then every connection aged \
             out: max age 30 s +10%), exits within 59 s, stopTimeout 60 s"
        ),
        "{}",
        plan.stdout
    );
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    assert_eq!(account.service("game-server").await.unwrap().desired_count(), 3);

    // Count, cpu/memory and an environment variable change.
    let stack = account.write_stack(&[
        ("count = 3", "count = 2"),
        ("cpu = 256\nmemory = 512", "cpu = 512\nmemory = 1024"),
        ("LOG_LEVEL = \"info\"", "LOG_LEVEL = \"debug\""),
    ]);
    let plan = account.provision(&["plan", "--output", "json", "--detailed-exitcode"], &stack);
    assert_eq!(plan.code, 2);
    let plan = json(&plan);
    let changed: Vec<_> =
        plan["steps"].as_array().unwrap().iter().filter(|step| step["action"] != "unchanged").collect();
    assert_eq!(changed.len(), 2, "only game-server's task definition and service: {changed:#?}");
    let fields = |step: &serde_json::Value| -> BTreeMap<String, (String, String)> {
        step["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["field"].as_str().unwrap().to_owned(),
                    (c["old"].as_str().unwrap().to_owned(), c["new"].as_str().unwrap().to_owned()),
                )
            })
            .collect()
    };
    assert_eq!(changed[0]["kind"], "task-definition");
    let definition = fields(changed[0]);
    assert_eq!(definition.keys().collect::<Vec<_>>(), ["cpu", "environment", "memory"]);
    assert_eq!(definition["cpu"], ("256".to_owned(), "512".to_owned()));
    assert!(definition["environment"].1.contains("LOG_LEVEL=debug"));
    assert_eq!(changed[1]["kind"], "service");
    let service = fields(changed[1]);
    assert_eq!(service["desired_count"], ("3".to_owned(), "2".to_owned()));
    assert_eq!(
        service["task_definition"],
        ("shop-game-server:2".to_owned(), "shop-game-server:(new revision)".to_owned())
    );
    // A new revision: ECS replaces every task, and plan says so.
    assert_eq!(service["rollout"], ("none".to_owned(), "replaces every task".to_owned()));
    assert_eq!(service.len(), 3, "{service:?}");

    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let service = account.service("game-server").await.unwrap();
    assert_eq!(service.desired_count(), 2);
    assert!(service.task_definition().unwrap().ends_with("shop-game-server:3"), "{:?}", service.task_definition());
    let definition =
        account.ecs().describe_task_definition().task_definition("shop-game-server:3").send().await.unwrap();
    assert_eq!(definition.task_definition().unwrap().cpu(), Some("512"));
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_leaves_nothing_tagged() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);

    let refused = account.provision(&["destroy"], &stack);
    assert_ne!(refused.code, 0, "no terminal and no --yes: nothing is deleted");
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(account.service("game-server").await.is_some());

    let destroy = account.provision(&["destroy", "--yes", "--delete-logs", "-o", "json"], &stack);
    assert_eq!(destroy.code, 0, "{}", destroy.stderr);
    let destroyed = json(&destroy);
    test_support::assert_matches_schema("destroy", &destroyed);
    assert_eq!(destroyed["destroyed"], true, "{destroyed:#}");
    let deleted: Vec<&str> = destroyed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["action"] == "deleted")
        .map(|change| change["kind"].as_str().unwrap())
        .collect();
    for kind in ["ecs service", "ecs cluster", "cloud map namespace", "iam role", "log group", "ecr repository"] {
        assert!(deleted.contains(&kind), "{kind} not among the deleted: {destroyed:#}");
    }

    assert!(account.service("game-server").await.is_none());
    assert!(account.service("ranking").await.is_none());
    let clusters = account.ecs().describe_clusters().clusters(APP).send().await.unwrap();
    assert!(clusters.clusters().iter().all(|c| c.status() != Some("ACTIVE")), "{clusters:?}");
    assert!(account.namespaces_named("shop.internal").await.is_empty());
    assert!(account.security_groups_named("shop-tasks").await.is_empty());
    for role in ["shop-execution", "shop-game-server-task", "shop-ranking-task"] {
        assert!(account.iam().get_role().role_name(role).send().await.is_err(), "{role} is left");
    }
    let boundary = account.iam().get_policy().policy_arn("arn:aws:iam::123456789012:policy/shop-boundary").send().await;
    assert!(boundary.is_err(), "the boundary is left: {boundary:?}");
    let groups = account.logs().describe_log_groups().log_group_name_prefix("/ecs/shop/").send().await.unwrap();
    assert!(groups.log_groups().is_empty());
    assert!(account.ecr().describe_repositories().send().await.unwrap().repositories().is_empty());
    for family in ["shop-game-server", "shop-ranking"] {
        assert!(
            account.revisions(family, TaskDefinitionStatus::Active).await.is_empty(),
            "{family} has active revisions"
        );
    }

    let again = account.provision(&["destroy", "--yes"], &stack);
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("Nothing of app shop exists"), "{}", again.stdout);

    // The same stack comes back after a destroy.
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(apply.stdout.contains("17 to create"), "{}", apply.stdout);
    assert_eq!(account.namespaces_named("shop.internal").await.len(), 1);
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}

/// Destroy deletes only what carries both of this app's tags: resources
/// with the stack's names that are untagged, tagged for another app, or
/// tagged with the app but not made by provision survive it, and destroy
/// says why for each.
#[tokio::test(flavor = "multi_thread")]
async fn destroy_leaves_same_named_resources_that_are_not_this_apps_and_says_why() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    account.moto.boto3("logs", "create_log_group", json!({"logGroupName": "/ecs/shop/game-server"}));
    let tags = json!([{"ResourceType": "security-group", "Tags": [
        {"Key": "app", "Value": "other"}, {"Key": "managed-by", "Value": "provision"}
    ]}]);
    account.ec2(
        "create_security_group",
        json!({"GroupName": "shop-tasks", "Description": "theirs", "VpcId": account.vpc, "TagSpecifications": tags}),
    );
    account.make_role("shop-execution", json!({"Service": "ecs-tasks.amazonaws.com"}), &[("app", "shop")]);

    let destroy = account.provision(&["destroy", "--yes", "--delete-logs"], &stack);
    assert_eq!(destroy.code, 0, "{}\n{}", destroy.stdout, destroy.stderr);
    for line in [
        "log group /ecs/shop/game-server (kept: not this app's: it has neither an app tag nor managed-by=provision)",
        "(kept: not this app's: it is tagged app=other)",
        "iam role shop-execution (kept: not this app's: tagged app=shop but not managed-by=provision, so provision \
         did not make it)",
    ] {
        assert!(destroy.stdout.contains(line), "{line}: {}", destroy.stdout);
    }
    assert!(destroy.stdout.contains("  - security group shop-tasks (sg-"), "{}", destroy.stdout);
    assert!(destroy.stdout.contains("Nothing of app shop to delete"), "{}", destroy.stdout);
    let groups = account.logs().describe_log_groups().log_group_name_prefix("/ecs/shop/").send().await.unwrap();
    assert_eq!(groups.log_groups().len(), 1, "the log group survives");
    assert_eq!(account.security_groups_named("shop-tasks").await.len(), 1, "the security group survives");
    assert!(account.iam().get_role().role_name("shop-execution").send().await.is_ok(), "the role survives");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_killed_half_way_is_finished_by_the_next_without_duplicates() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let everything = json(&account.provision(&["plan", "--output", "json"], &stack))["summary"]["create"].as_u64();
    let everything = everything.unwrap();

    // Kill the first apply as soon as it reports its first create.
    let mut child = account
        .command(&["apply", "--yes", "--no-wait"], &stack)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.trim_start().starts_with("created ") {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(seen.iter().any(|line| line.contains("created")), "{seen:?}");
    assert!(!seen.iter().any(|line| line.contains("Applied.")), "killed before the end: {seen:?}");

    let plan = account.provision(&["plan", "--output", "json"], &stack);
    let remaining = json(&plan)["summary"]["create"].as_u64().unwrap();
    assert!(remaining < everything, "the killed apply made something: {remaining} of {everything} left");

    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(apply.stdout.contains(&format!("{remaining} to create")), "{}", apply.stdout);

    assert_eq!(account.namespaces_named("shop.internal").await.len(), 1);
    let namespace = &account.namespaces_named("shop.internal").await[0];
    let mut names: Vec<_> =
        account.discovery_services(namespace).await.iter().map(|s| s.name().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["game-server", "ranking"]);
    assert_eq!(account.security_groups_named("shop-tasks").await.len(), 1);
    for family in ["shop-game-server", "shop-ranking"] {
        assert_eq!(account.revisions(family, TaskDefinitionStatus::Active).await.len(), 1, "{family}");
    }
    assert!(account.service("game-server").await.is_some() && account.service("ranking").await.is_some());
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_stack_file_fails_before_any_call() {
    let account = Account::new().await;
    let stack = account.write_stack(&[("cpu = 256\nmemory = 512\nstop", "cpu = 256\nmemory = 4096\nstop")]);
    // Point at a port nobody listens on: a call would fail differently.
    let mut command = account.command(&["plan"], &stack);
    command.env("AWS_ENDPOINT_URL", format!("http://{}", test_support::free_addr()));
    let outcome = run(command);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("stack.toml:"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("memory"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("endpoint"), "no call was made: {}", outcome.stderr);

    // Valid locally, refused by ECS: also caught before any call.
    let stack =
        account.write_stack(&[("interval_secs = 5\ntimeout_secs = 2", "interval_secs = 0.5\ntimeout_secs = 0.5")]);
    let mut command = account.command(&["apply", "--yes"], &stack);
    command.env("AWS_ENDPOINT_URL", format!("http://{}", test_support::free_addr()));
    let outcome = run(command);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("health_check.interval_secs 0.5 is not what ECS accepts"), "{}", outcome.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_that_is_not_ours_is_left_alone_with_a_clear_error() {
    let account = Account::new().await;
    account.ecs().create_cluster().cluster_name(APP).send().await.unwrap();
    let stack = account.write_stack(&[]);
    for command in [&["plan"][..], &["apply", "--yes", "--no-wait"]] {
        let run = account.provision(command, &stack);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("not this app's") && run.stderr.contains("ecs cluster shop"), "{}", run.stderr);
    }
    assert!(account.namespaces_named("shop.internal").await.is_empty(), "apply stopped before any change");
}

#[tokio::test(flavor = "multi_thread")]
async fn account_problems_get_one_clear_line_each() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);

    let mut no_credentials = account.command(&["plan"], &stack);
    no_credentials.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let outcome = run(no_credentials);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("no AWS credentials"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("cannot reach"), "a missing credential is no network problem: {}", outcome.stderr);
    assert!(
        outcome.stderr.contains("Looked in: 1. the environment: AWS_ACCESS_KEY_ID not set"),
        "where the SDK looked: {}",
        outcome.stderr
    );

    let missing_vpc = account.write_stack(&[(&account.vpc.clone(), "vpc-0123456789abcdef0")]);
    let outcome = account.provision(&["plan"], &missing_vpc);
    assert_eq!(outcome.code, 1);
    assert!(
        outcome.stderr.contains("VPC vpc-0123456789abcdef0 does not exist in region us-east-1"),
        "{}",
        outcome.stderr
    );

    let mut no_region = account.command(&["plan"], &stack);
    no_region.env_remove("AWS_REGION");
    let outcome = run(no_region);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("no AWS region"), "{}", outcome.stderr);

    let mut unreachable = account.command(&["plan"], &stack);
    unreachable.env("AWS_ENDPOINT_URL", format!("http://{}", test_support::free_addr()));
    let outcome = run(unreachable);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("cannot reach the AWS endpoint"), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.lines().count(), 1, "one line, not a debug dump: {}", outcome.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_services_and_cloud_map_side_by_side() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let before = account.provision(&["status"], &stack);
    assert_eq!(before.code, 0);
    assert!(before.stdout.contains("the cluster does not exist"), "{}", before.stdout);

    // apply -o json: the progress on stderr, one document on stdout.
    let apply = account.provision(&["apply", "--yes", "--no-wait", "-o", "json"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(
        apply.stderr.contains("Applying:") && apply.stderr.contains("created ecs cluster shop"),
        "{}",
        apply.stderr
    );
    let applied = json(&apply);
    test_support::assert_matches_schema("apply", &applied);
    assert_eq!(applied["plan"]["summary"]["create"], 17, "{applied:#}");
    let changes = applied["changes"].as_array().unwrap();
    assert!(changes.contains(&json!({"action": "created", "kind": "ecs cluster", "name": "shop"})), "{applied:#}");
    assert_eq!(changes.len(), 17, "a change per created resource: {applied:#}");
    assert_eq!(applied["deployments"], json!([]), "--no-wait waits for none");

    let status = account.provision(&["status"], &stack);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("service game-server  (game-server.shop.internal)"), "{}", status.stdout);
    assert!(status.stdout.contains("deployment PRIMARY"), "{}", status.stdout);
    let as_json = account.provision(&["status", "-o", "json"], &stack);
    assert_eq!(as_json.code, 0, "{}", as_json.stderr);
    let report = json(&as_json);
    test_support::assert_matches_schema("status", &report);
    assert_eq!((report["cluster_exists"].clone(), report["consistent"].clone()), (json!(true), json!(true)));
    let game_server = &report["services"][0];
    assert_eq!(game_server["dns_name"], "game-server.shop.internal", "{report:#}");
    assert_eq!(game_server["deployments"][0]["status"], "PRIMARY", "{report:#}");

    // An instance registered in Cloud Map with no task behind it is a warning.
    let namespace = &account.namespaces_named("shop.internal").await[0];
    let services = account.discovery_services(namespace).await;
    let ranking = services.iter().find(|s| s.name() == Some("ranking")).unwrap();
    account
        .cloud_map()
        .register_instance()
        .service_id(ranking.id().unwrap())
        .instance_id("0123456789abcdef")
        .attributes("AWS_INSTANCE_IPV4", "10.42.0.9")
        .send()
        .await
        .unwrap();
    let status = account.provision(&["status"], &stack);
    assert_eq!(status.code, 1, "disagreement -> exit 1");
    assert!(status.stdout.contains("warning: Cloud Map instance 0123456789abcdef (10.42.0.9"), "{}", status.stdout);
    assert!(!status.stdout.contains('\u{1b}'), "no colour off a terminal: {:?}", status.stdout);
    let as_json = account.provision(&["status", "-o", "json"], &stack);
    assert_eq!(as_json.code, 1, "the same exit code with -o json");
    let report = json(&as_json);
    test_support::assert_matches_schema("status", &report);
    assert_eq!(report["consistent"], false);
    let ranking = report["services"].as_array().unwrap().iter().find(|service| service["name"] == "ranking").unwrap();
    let orphans = ranking["orphan_instances"].as_array().unwrap();
    assert_eq!(
        (orphans.len(), &orphans[0]["id"], &orphans[0]["ip"]),
        (1, &json!("0123456789abcdef"), &json!("10.42.0.9"))
    );
    assert!(report["warnings"][0].as_str().unwrap().contains("0123456789abcdef"), "{report:#}");
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn named_sources_and_task_role_policies_are_granted_and_strays_revoked() {
    let account = Account::new().await;
    let bastion =
        account.ec2("create_security_group", json!({"GroupName": "bastion", "Description": "b", "VpcId": account.vpc}));
    let bastion = text(&bastion["GroupId"]);
    let policy = account
        .iam()
        .create_policy()
        .policy_name("shop-read")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let policy = policy.policy().unwrap().arn().unwrap().to_owned();
    let stack = account.write_stack(&[
        ("log_retention_days = 14", &format!("log_retention_days = 14\nallow_from = [\"{bastion}\"]")),
        ("stop_timeout_secs = 60", &format!("stop_timeout_secs = 60\ntask_role_policies = [\"{policy}\"]")),
    ]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);

    let group = account.security_groups_named("shop-tasks").await.remove(0);
    let mut sources: Vec<_> = list(&group["IpPermissions"])
        .iter()
        .flat_map(|p| list(&p["UserIdGroupPairs"]).into_iter().map(|pair| text(&pair["GroupId"])))
        .collect();
    sources.sort();
    let mut expected = vec![bastion.clone(), text(&group["GroupId"])];
    expected.sort();
    assert_eq!(sources, expected);
    let attached = account.iam().list_attached_role_policies().role_name("shop-game-server-task").send().await.unwrap();
    let attached: Vec<_> = attached.attached_policies().iter().map(|p| p.policy_arn().unwrap()).collect();
    assert_eq!(attached, [policy.as_str()]);
    let ranking = account.iam().list_attached_role_policies().role_name("shop-ranking-task").send().await.unwrap();
    assert!(ranking.attached_policies().is_empty(), "only the service the stack names gets the policy");

    // Someone opens the port to the world: plan shows it, apply takes it back.
    account.ec2(
        "authorize_security_group_ingress",
        json!({"GroupId": group["GroupId"], "IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "CidrIp": "0.0.0.0/0"}),
    );
    let plan = account.provision(&["plan"], &stack);
    assert!(plan.stdout.contains("security group       shop-tasks"), "{}", plan.stdout);
    assert!(plan.stdout.contains("tcp/5000 from 0.0.0.0/0"), "{}", plan.stdout);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    let group = account.security_groups_named("shop-tasks").await.remove(0);
    assert!(
        list(&group["IpPermissions"]).iter().all(|p| list(&p["IpRanges"]).iter().all(|r| r["CidrIp"] != "0.0.0.0/0")),
        "{group}"
    );
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_committed_stack_file_applies_as_it_is_to_a_default_vpc() {
    let account = Account::new().await;
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.toml");
    let plan = account.provision(&["plan", "--output", "json"], &committed);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan = json(&plan);
    let default_vpc = account.ec2("describe_vpcs", json!({"Filters": [{"Name": "is-default", "Values": ["true"]}]}));
    assert_eq!(plan["vpc"], default_vpc["Vpcs"][0]["VpcId"]);
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &committed);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let service =
        account.ecs().describe_services().cluster("grpc-fargate").services("game-server").send().await.unwrap();
    let network = service.services()[0].network_configuration().unwrap().awsvpc_configuration().unwrap();
    let defaults =
        account.ec2("describe_subnets", json!({"Filters": [{"Name": "default-for-az", "Values": ["true"]}]}));
    let defaults = list(&defaults["Subnets"]);
    assert!(!defaults.is_empty());
    assert_eq!(network.subnets().len(), defaults.len(), "every default subnet of the default VPC");
    assert_eq!(network.assign_public_ip().unwrap().as_str(), "ENABLED");
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &committed).code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_type_change_is_planned_as_a_replacement_and_applied() {
    use aws_sdk_servicediscovery::types::{
        DnsConfig, DnsRecord, HealthCheckCustomConfig, RecordType, RoutingPolicy, Tag,
    };
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);

    // An older layout of ours: ranking with A records only.
    let namespace = account.namespaces_named("shop.internal").await.remove(0);
    let ranking =
        account.discovery_services(&namespace).await.into_iter().find(|s| s.name() == Some("ranking")).unwrap();
    account.cloud_map().delete_service().id(ranking.id().unwrap()).send().await.unwrap();
    let config = DnsConfig::builder()
        .routing_policy(RoutingPolicy::Multivalue)
        .dns_records(DnsRecord::builder().r#type(RecordType::A).ttl(10).build().unwrap())
        .build()
        .unwrap();
    let mut create = account
        .cloud_map()
        .create_service()
        .name("ranking")
        .namespace_id(&namespace)
        .dns_config(config)
        .health_check_custom_config(HealthCheckCustomConfig::builder().build());
    for (key, value) in [("app", APP), ("managed-by", "provision")] {
        create = create.tags(Tag::builder().key(key).value(value).build().unwrap());
    }
    create.send().await.unwrap();

    let plan = account.provision(&["plan"], &stack);
    assert!(plan.stdout.contains("-/+ replace    cloud map service    ranking"), "{}", plan.stdout);
    assert!(plan.stdout.contains("because DNS record types can only change by recreating"), "{}", plan.stdout);
    // Colour: none in a pipe (above), red where it is forced, none with
    // NO_COLOR even then.
    let mut forced = account.command(&["plan"], &stack);
    forced.env("CLICOLOR_FORCE", "1");
    let forced = run(forced);
    assert!(forced.stdout.contains("  \u{1b}[31m-/+ replace  \u{1b}[0m  cloud map service"), "{:?}", forced.stdout);
    let mut no_color = account.command(&["plan"], &stack);
    no_color.env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
    let no_color = run(no_color);
    assert_eq!(no_color.stdout, plan.stdout, "NO_COLOR wins");
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);

    let services = account.discovery_services(&namespace).await;
    let ranking: Vec<_> = services.iter().filter(|s| s.name() == Some("ranking")).collect();
    assert_eq!(ranking.len(), 1);
    let service = account.cloud_map().get_service().id(ranking[0].id().unwrap()).send().await.unwrap();
    assert_eq!(service.service().unwrap().dns_config().unwrap().dns_records().len(), 2);
    let ecs = account.service("ranking").await.unwrap();
    assert_eq!(ecs.service_registries()[0].registry_arn(), service.service().unwrap().arn());
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

#[tokio::test(flavor = "multi_thread")]
async fn deploy_pins_an_image_by_digest_a_second_deploy_changes_nothing_and_rollback_goes_back() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    let repository = format!("{REGISTRY}/shop/game-server");

    let v1 = account.push_image("shop/game-server", "v1").await;
    let image = format!("{repository}:v1");
    let deploy = account.provision(&["deploy", "--service", "game-server", "--image", &image, "--no-wait"], &stack);
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let service = account.service("game-server").await.unwrap();
    assert!(service.task_definition().unwrap().ends_with("shop-game-server:2"), "{:?}", service.task_definition());
    assert_eq!(service.desired_count(), 3, "the first image raises the count from 0 to the stack's");
    let definition =
        account.ecs().describe_task_definition().task_definition("shop-game-server:2").send().await.unwrap();
    let container = &definition.task_definition().unwrap().container_definitions()[0];
    assert_eq!(container.image(), Some(format!("{repository}@{v1}").as_str()), "pinned by digest, not by tag");
    assert_eq!(account.service("ranking").await.unwrap().desired_count(), 0, "only the named service moves");

    let again = account.provision(&["deploy", "--service", "game-server", "--image", &image, "--no-wait"], &stack);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("Nothing to deploy"), "{}", again.stdout);
    assert_eq!(account.revisions("shop-game-server", TaskDefinitionStatus::Active).await.len(), 2);

    let v2 = account.push_image("shop/game-server", "v2").await;
    assert_ne!(v1, v2);
    let deploy = account.provision(
        &["deploy", "--service", "game-server", "--image", &format!("{repository}:v2"), "--no-wait", "-o", "json"],
        &stack,
    );
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let deployed = json(&deploy);
    test_support::assert_matches_schema("deploy", &deployed);
    assert_eq!(deployed["images"], json!({"game-server": format!("{repository}@{v2}")}), "{deployed:#}");
    let changes = deployed["changes"].as_array().unwrap();
    assert!(
        changes.contains(&json!({"action": "registered", "kind": "task definition", "name": "shop-game-server:3"})),
        "{deployed:#}"
    );
    assert!(account.service("game-server").await.unwrap().task_definition().unwrap().ends_with("shop-game-server:3"));
    // apply keeps what deploy put there.
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);

    let rollback = account.provision(&["rollback", "game-server", "--no-wait"], &stack);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    assert!(rollback.stdout.contains("shop-game-server:3 -> shop-game-server:2"), "{}", rollback.stdout);
    assert!(account.service("game-server").await.unwrap().task_definition().unwrap().ends_with("shop-game-server:2"));
    // apply leaves a rolled-back service where it is.
    let plan = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(plan.code, 0, "{}", plan.stdout);

    let missing = account.provision(
        &["deploy", "--service", "game-server", "--image", &format!("{repository}:v9"), "--no-wait"],
        &stack,
    );
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("is not in ECR repository shop/game-server"), "{}", missing.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_needs_the_infrastructure_and_recreates_a_missing_repository() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let external = format!("public.ecr.aws/docker/library/busybox@sha256:{}", "ab".repeat(32));

    let early = account.provision(&["deploy", "--service", "ranking", "--image", &external, "--no-wait"], &stack);
    assert_eq!(early.code, 1);
    assert!(early.stderr.contains("run `provision apply` first, or deploy with --apply"), "{}", early.stderr);
    assert!(account.ecr().describe_repositories().send().await.unwrap().repositories().is_empty(), "nothing made");

    let unknown = account.provision(&["deploy", "--service", "nope", "--no-wait"], &stack);
    assert!(
        unknown.stderr.contains("--service nope: not in the stack (its services: game-server, ranking)"),
        "{}",
        unknown.stderr
    );

    let with_apply =
        account.provision(&["deploy", "--apply", "--service", "ranking", "--image", &external, "--no-wait"], &stack);
    assert_eq!(with_apply.code, 0, "{}", with_apply.stderr);
    assert_eq!(account.service("ranking").await.unwrap().desired_count(), 2);

    account.ecr().delete_repository().repository_name("shop/ranking").send().await.unwrap();
    let deploy = account.provision(&["deploy", "--service", "ranking", "--image", &external, "--no-wait"], &stack);
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let repository = account.ecr().describe_repositories().repository_names("shop/ranking").send().await.unwrap();
    let repository = &repository.repositories()[0];
    assert_eq!(repository.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
    assert!(repository.image_scanning_configuration().unwrap().scan_on_push());
    let lifecycle = account.ecr().get_lifecycle_policy().repository_name("shop/ranking").send().await.unwrap();
    assert!(lifecycle.lifecycle_policy_text().unwrap().contains("\"countNumber\":20"), "{lifecycle:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_with_the_docker_builder_and_no_docker_fails_at_once_and_says_how_to_deploy_a_prebuilt_image() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    let empty = account.dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command =
        account.command(&["deploy", "--service", "game-server", "--builder", "docker", "--no-wait"], &stack);
    command.env("PATH", &empty);
    let outcome = run(command);
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("no docker CLI on PATH"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("--image URI"), "{}", outcome.stderr);
    assert!(
        account.service("game-server").await.unwrap().task_definition().unwrap().ends_with(":1"),
        "nothing deployed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_from_prebuilt_binaries_refuses_a_missing_or_foreign_binary_before_any_call() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let binaries = account.dir.join("release");
    std::fs::create_dir_all(&binaries).unwrap();
    let deploy = |service: &str| {
        account.provision(
            &["deploy", "--service", service, "--binaries", binaries.to_str().unwrap(), "--apply", "--no-wait"],
            &stack,
        )
    };
    let missing = deploy("game-server");
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("--binaries: no game-server binary in")
            && missing.stderr.contains("cargo build --release --locked -p game-server"),
        "{}",
        missing.stderr
    );
    // An x86_64 executable (this test's own) where ranking's tasks are arm64.
    std::fs::copy(std::env::current_exe().unwrap(), binaries.join("ranking")).unwrap();
    let foreign = deploy("ranking");
    assert_eq!(foreign.code, 1);
    assert!(
        foreign.stderr.contains("is built for X86_64 but service ranking's tasks run on ARM64"),
        "{}",
        foreign.stderr
    );
    std::fs::write(binaries.join("game-server"), "#!/bin/sh\n").unwrap();
    let script = deploy("game-server");
    assert!(script.stderr.contains("is not a Linux executable"), "{}", script.stderr);
    // Refused before --apply made anything.
    assert!(account.service("game-server").await.is_none());
    assert!(account.ecr().describe_repositories().send().await.unwrap().repositories().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_image_that_does_not_exist_is_never_applied() {
    let account = Account::new().await;
    let missing = format!("{REGISTRY}/shop/game-server:v7");
    let with_image = |image: &str| {
        account.write_stack(&[("stop_timeout_secs = 60", &format!("stop_timeout_secs = 60\nimage = \"{image}\""))])
    };

    let early = account.provision(&["apply", "--yes", "--no-wait"], &with_image(&missing));
    assert_eq!(early.code, 1);
    assert!(early.stderr.contains("which does not exist yet"), "{}", early.stderr);

    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &account.write_stack(&[])).code, 0);
    let refused = account.provision(&["apply", "--yes", "--no-wait"], &with_image(&missing));
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("image 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/game-server:v7 is not in ECR repository shop/game-server"), "{}", refused.stderr);
    assert_eq!(account.service("game-server").await.unwrap().desired_count(), 0);

    let digest = account.push_image("shop/game-server", "v7").await;
    let applied = account.provision(&["apply", "--yes", "--no-wait"], &with_image(&missing));
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let service = account.service("game-server").await.unwrap();
    assert_eq!(service.desired_count(), 3);
    let definition = account
        .ecs()
        .describe_task_definition()
        .task_definition(service.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let image = definition.task_definition().unwrap().container_definitions()[0].image().unwrap().to_owned();
    assert_eq!(image, format!("{REGISTRY}/shop/game-server@{digest}"), "the tag is pinned by digest");
}

#[tokio::test(flavor = "multi_thread")]
async fn private_subnets_are_those_without_a_route_to_an_internet_gateway() {
    let account = Account::new().await;
    let gateway = account.ec2("create_internet_gateway", json!({}));
    let gateway = text(&gateway["InternetGateway"]["InternetGatewayId"]);
    account.ec2("attach_internet_gateway", json!({"InternetGatewayId": gateway, "VpcId": account.vpc}));
    let table = account.ec2("create_route_table", json!({"VpcId": account.vpc}));
    let table = text(&table["RouteTable"]["RouteTableId"]);
    let route_to_gateway = |table: &str| {
        account.ec2(
            "create_route",
            json!({"RouteTableId": table, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway}),
        )
    };
    route_to_gateway(&table);
    account.ec2("associate_route_table", json!({"RouteTableId": table, "SubnetId": account.subnets[0]}));

    let subnets = format!("{:?}", account.subnets);
    let stack = account.write_stack(&[(&subnets, "\"private\"")]);
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let service = account.service("game-server").await.unwrap();
    let network = service.network_configuration().unwrap().awsvpc_configuration().unwrap();
    assert_eq!(network.subnets(), [account.subnets[1].as_str()], "the public subnet is left out");

    // With the main route table public too, no subnet is private: say so.
    let filters =
        json!([{"Name": "vpc-id", "Values": [account.vpc]}, {"Name": "association.main", "Values": ["true"]}]);
    let main = account.ec2("describe_route_tables", json!({ "Filters": filters }));
    route_to_gateway(&text(&main["RouteTables"][0]["RouteTableId"]));
    let plan = account.provision(&["plan"], &stack);
    assert_eq!(plan.code, 1);
    assert!(plan.stderr.contains("has no private subnets (without a route to an internet gateway)"), "{}", plan.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn moving_the_stack_to_another_vpc_is_refused_while_the_namespace_is_in_the_old_one() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    let subnets = format!("{:?}", account.subnets);
    let vpc = account.vpc.clone();
    let moved = account.write_stack(&[(&format!("vpc = \"{vpc}\""), "vpc = \"default\""), (&subnets, "\"default\"")]);
    let plan = account.provision(&["plan"], &moved);
    assert_eq!(plan.code, 1);
    assert!(plan.stderr.contains(&format!("cloud map namespace shop.internal answers in {vpc}")), "{}", plan.stderr);
    assert!(plan.stderr.contains("provision destroy"), "{}", plan.stderr);
}

/// The test stack with a store that ranking uses, in place of its secret.
const WITH_STORE: [(&str, &str); 2] = [
    (
        "secrets = { RANKING_STORE = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:ranking-store\" }",
        "\n[service.stores]\nRANKING_STORE = \"board\"",
    ),
    ("[[service]]\nname = \"game-server\"", "[[store]]\nname = \"board\"\n\n[[service]]\nname = \"game-server\""),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_store_is_made_with_tls_auth_and_its_own_group_and_ranking_gets_its_url_as_a_secret() {
    let account = Account::new().await;
    let stack = account.write_stack(&WITH_STORE);
    let plan = account.provision(&["plan", "--output", "json"], &stack);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(apply.stdout.contains("created elasticache store shop-board"), "{}", apply.stdout);

    // The replication group: TLS, AUTH, at rest, a replica with failover.
    let groups = account.elasticache().describe_replication_groups().replication_group_id("shop-board").send();
    let group = groups.await.unwrap().replication_groups()[0].clone();
    assert_eq!(group.engine(), Some("valkey"));
    assert_eq!(group.cache_node_type(), Some("cache.t4g.micro"));
    assert_eq!(
        (group.transit_encryption_enabled(), group.at_rest_encryption_enabled(), group.auth_token_enabled()),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(group.automatic_failover().map(|status| status.as_str()), Some("enabled"));
    assert_eq!(group.snapshot_retention_limit(), Some(7), "daily snapshots kept a week");
    let primary = group.node_groups()[0].primary_endpoint().unwrap().address().unwrap().to_owned();

    // Its group admits the store's port from the tasks' group, nothing else.
    let tasks = text(&account.security_groups_named("shop-tasks").await[0]["GroupId"]);
    let store_group = account.security_groups_named("shop-board-store").await;
    let rules = list(&store_group[0]["IpPermissions"]);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!((&rules[0]["FromPort"], &rules[0]["ToPort"]), (&json!(6379), &json!(6379)));
    assert_eq!(rules[0]["UserIdGroupPairs"][0]["GroupId"], tasks.as_str());
    assert!(list(&rules[0]["IpRanges"]).is_empty(), "no CIDR: {rules:?}");

    // The secret holds the whole URL; ranking gets it under `secrets`.
    let secret = account.secrets().get_secret_value().secret_id("shop/board/url").send().await.unwrap();
    let url = secret.secret_string().unwrap();
    let token = url.strip_prefix("rediss://:").and_then(|rest| rest.strip_suffix(&format!("@{primary}:6379")));
    let token = token.unwrap_or_else(|| panic!("rediss://:TOKEN@{primary}:6379, not {url}"));
    assert!(token.len() == 64 && token.chars().all(|c| c.is_ascii_alphanumeric()), "{token}");
    let definition = account.ecs().describe_task_definition().task_definition("shop-ranking").send().await.unwrap();
    let container = &definition.task_definition().unwrap().container_definitions()[0];
    let secret_arn = secret.arn().unwrap();
    assert!(
        container.secrets().iter().any(|s| s.name() == "RANKING_STORE" && s.value_from() == secret_arn),
        "{:?}",
        container.secrets()
    );
    assert!(container.environment().iter().all(|pair| pair.name() != Some("RANKING_STORE")));
    let policy = account.iam().get_role_policy().role_name("shop-execution").policy_name("provision").send();
    let policy = percent_decode(policy.await.unwrap().policy_document());
    assert!(policy.contains(":secret:shop/board/url-??????"), "the execution role reads that secret: {policy}");

    // The token is in none of what provision printed.
    for run in [&plan, &apply, &account.provision(&["plan", "--output", "json"], &stack)] {
        assert!(!run.stdout.contains(token) && !run.stderr.contains(token), "token shown: {}", run.stdout);
    }
    let again = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(again.code, 0, "a second plan is clean: {}", again.stdout);
    let status = account.provision(&["status"], &stack);
    assert!(status.stdout.contains("available  valkey"), "{}", status.stdout);
    assert!(status.stdout.contains(&format!("primary {primary}:6379")), "{}", status.stdout);

    // A node type and snapshot retention change are planned and applied in
    // place.
    let store_aws = |settings: &str| {
        account.write_stack(&[
            WITH_STORE[0],
            (
                WITH_STORE[1].0,
                &WITH_STORE[1].1.replace("name = \"board\"", &format!("name = \"board\"\n[store.aws]\n{settings}")),
            ),
        ])
    };
    let bigger = store_aws("node_type = \"cache.t4g.small\"\nsnapshot_retention_days = 14");
    let plan = account.provision(&["plan"], &bigger);
    assert!(plan.stdout.contains("node_type: cache.t4g.micro -> cache.t4g.small"), "{}", plan.stdout);
    assert!(plan.stdout.contains("snapshot_retention_days: 7 -> 14"), "{}", plan.stdout);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &bigger).code, 0);
    let groups = account.elasticache().describe_replication_groups().replication_group_id("shop-board").send();
    let group = groups.await.unwrap().replication_groups()[0].clone();
    assert_eq!((group.cache_node_type(), group.snapshot_retention_limit()), (Some("cache.t4g.small"), Some(14)));

    // A replacement deletes the boards: refused without its own consent,
    // --yes or not, before any change.
    let other_engine = store_aws("node_type = \"cache.t4g.small\"\nsnapshot_retention_days = 14\nengine = \"redis\"");
    let refused = account.provision(&["apply", "--yes", "--no-wait"], &other_engine);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(
            "this plan replaces elasticache store shop-board, which deletes every board in it (a snapshot is kept; \
             the services start over empty): nothing was changed. Apply again with --replace-store board"
        ),
        "{}",
        refused.stderr
    );
    let groups = account.elasticache().describe_replication_groups().replication_group_id("shop-board").send();
    assert_eq!(groups.await.unwrap().replication_groups()[0].engine(), Some("valkey"));

    // Destroy keeps a final snapshot and takes the store's resources away.
    let destroy = account.provision(&["destroy", "--yes"], &bigger);
    assert!(destroy.stdout.contains("final snapshot shop-board-final-"), "{}", destroy.stdout);
    assert!(account.security_groups_named("shop-board-store").await.is_empty(), "{}", destroy.stdout);
    assert!(account.secrets().describe_secret().secret_id("shop/board/url").send().await.is_err());
    let groups = account.elasticache().describe_replication_groups().replication_group_id("shop-board").send().await;
    assert!(
        groups.map_or(true, |answer| answer.replication_groups().iter().all(|g| g.status() == Some("deleting"))),
        "the store is deleted"
    );
    let subnet_groups = account.elasticache().describe_cache_subnet_groups().send().await.unwrap();
    let subnet_group_left =
        subnet_groups.cache_subnet_groups().iter().any(|g| g.cache_subnet_group_name() == Some("shop-board"));
    if destroy.code == 0 {
        assert!(!subnet_group_left, "{}", destroy.stdout);
    } else {
        // moto 5.2.5 has no DeleteCacheSubnetGroup: destroy deletes the
        // rest, lists it as left behind, and a later destroy (on AWS)
        // finishes it.
        assert!(subnet_group_left);
        assert!(
            destroy
                .stdout
                .contains("cache-subnet-group: could not be deleted: elasticache:DeleteCacheSubnetGroup on shop-board"),
            "{}",
            destroy.stdout
        );
        assert!(destroy.stderr.contains("run destroy again to finish"), "{}", destroy.stderr);
    }
}

/// game-server's autoscaling table, inserted after its `depends_on`.
const SCALING: &str = "depends_on = [\"ranking\"]\n\n[service.autoscaling]\nmin = 2\nmax = 6\ncpu_percent = 50\n\
                       memory_percent = 80\n";

impl Account {
    /// The app's scalable targets, through boto3: (resource id, min, max).
    fn scalable_targets(&self) -> Vec<(String, u64, u64)> {
        let answer =
            self.moto.boto3("application-autoscaling", "describe_scalable_targets", json!({"ServiceNamespace": "ecs"}));
        list(&answer["ScalableTargets"])
            .iter()
            .map(|target| {
                (
                    text(&target["ResourceId"]),
                    target["MinCapacity"].as_u64().unwrap(),
                    target["MaxCapacity"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// game-server's scaling policies, through boto3: name -> (metric,
    /// target, scale-out cooldown, scale-in cooldown).
    fn scaling_policies(&self) -> BTreeMap<String, (String, f64, u64, u64)> {
        let answer = self.moto.boto3(
            "application-autoscaling",
            "describe_scaling_policies",
            json!({"ServiceNamespace": "ecs", "ResourceId": "service/shop/game-server"}),
        );
        list(&answer["ScalingPolicies"])
            .iter()
            .map(|policy| {
                let configuration = &policy["TargetTrackingScalingPolicyConfiguration"];
                assert_eq!(policy["PolicyType"], "TargetTrackingScaling", "{policy}");
                assert_eq!(policy["ScalableDimension"], "ecs:service:DesiredCount", "{policy}");
                (
                    text(&policy["PolicyName"]),
                    (
                        text(&configuration["PredefinedMetricSpecification"]["PredefinedMetricType"]),
                        configuration["TargetValue"].as_f64().unwrap(),
                        configuration["ScaleOutCooldown"].as_u64().unwrap(),
                        configuration["ScaleInCooldown"].as_u64().unwrap(),
                    ),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn autoscaling_owns_the_count_from_the_first_deploy_and_leaving_it_pins_the_count_again() {
    let account = Account::new().await;
    let stack = account.write_stack(&[("depends_on = [\"ranking\"]\n", SCALING)]);

    // Without an image the service is held at 0 and nothing registers yet:
    // Application Auto Scaling would raise it to min with nothing to run.
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert_eq!(account.scalable_targets(), []);
    assert_eq!(account.service("game-server").await.unwrap().desired_count(), 0);

    // The first image registers the target and the policies with the deploy.
    account.push_image("shop/game-server", "v1").await;
    let image = format!("{REGISTRY}/shop/game-server:v1");
    let deploy = account.provision(&["deploy", "--service", "game-server", "--image", &image, "--no-wait"], &stack);
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    assert!(deploy.stdout.contains("registered scalable target game-server"), "{}", deploy.stdout);
    assert_eq!(account.scalable_targets(), [("service/shop/game-server".to_owned(), 2, 6)]);
    assert_eq!(
        account.scaling_policies(),
        BTreeMap::from([
            ("shop-game-server-cpu".to_owned(), ("ECSServiceAverageCPUUtilization".to_owned(), 50.0, 60, 120)),
            ("shop-game-server-memory".to_owned(), ("ECSServiceAverageMemoryUtilization".to_owned(), 80.0, 60, 120)),
        ])
    );
    assert_eq!(account.service("game-server").await.unwrap().desired_count(), 3, "raised from 0 to its count once");
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0, "a second plan is clean");

    // Autoscaling moves the count (as its alarm would); neither a plan, nor
    // an apply, nor a deploy takes it back.
    account.ecs().update_service().cluster(APP).service("game-server").desired_count(5).send().await.unwrap();
    let plan = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    account.push_image("shop/game-server", "v2").await;
    let image = format!("{REGISTRY}/shop/game-server:v2");
    let deploy = account.provision(&["deploy", "--service", "game-server", "--image", &image, "--no-wait"], &stack);
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let service = account.service("game-server").await.unwrap();
    assert!(service.task_definition().unwrap().ends_with("shop-game-server:3"), "{:?}", service.task_definition());
    assert_eq!(service.desired_count(), 5, "the deploy left the scaled-out count");
    let status = account.provision(&["status"], &stack);
    assert!(status.stdout.contains("game-server      min 2 max 6, desired 5"), "{}", status.stdout);

    // New bounds and targets change in place; a target left out goes.
    // (Each stack written replaces the one before, in the same file.)
    let changed = account.write_stack(&[(
        "depends_on = [\"ranking\"]\n",
        "depends_on = [\"ranking\"]\n\n[service.autoscaling]\nmin = 2\nmax = 8\ncpu_percent = 60\n\
         scale_in_cooldown_secs = 300\n",
    )]);
    let plan = account.provision(&["plan"], &changed);
    assert!(plan.stdout.contains("capacity: min 2 max 6 -> min 2 max 8"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("target: 80% ECSServiceAverageMemoryUtilization -> none (deleted)"),
        "{}",
        plan.stdout
    );
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &changed).code, 0);
    assert_eq!(account.scalable_targets(), [("service/shop/game-server".to_owned(), 2, 8)]);
    assert_eq!(
        account.scaling_policies(),
        BTreeMap::from([(
            "shop-game-server-cpu".to_owned(),
            ("ECSServiceAverageCPUUtilization".to_owned(), 60.0, 60, 300)
        )])
    );
    assert_eq!(account.service("game-server").await.unwrap().desired_count(), 5);
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &changed).code, 0);

    // Without the table: deregistered, and the service pinned at its count.
    let fixed = account.write_stack(&[]);
    let plan = account.provision(&["plan"], &fixed);
    assert!(plan.stdout.contains("desired_count: 5 -> 3"), "{}", plan.stdout);
    assert!(plan.stdout.contains("capacity: min 2 max 8 -> none (autoscaling off)"), "{}", plan.stdout);
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &fixed);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert_eq!(account.scalable_targets(), []);
    assert_eq!(account.scaling_policies(), BTreeMap::new());
    assert_eq!(account.service("game-server").await.unwrap().desired_count(), 3);
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &fixed).code, 0);

    // Back on, then destroy removes the target and its policies.
    let stack = account.write_stack(&[("depends_on = [\"ranking\"]\n", SCALING)]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    assert_eq!(account.scalable_targets().len(), 1);
    let destroy = account.provision(&["destroy", "--yes"], &stack);
    assert_eq!(destroy.code, 0, "{}", destroy.stderr);
    assert!(destroy.stdout.contains("deleted scaling policy shop-game-server-cpu"), "{}", destroy.stdout);
    assert_eq!(account.scalable_targets(), []);
}

/// ECS replaces every task of a service whose UpdateService carries a task
/// definition, a network, registries or load balancers (the API
/// reference); moto does not. So the request itself is read (moto's
/// recorder): a count alone sends the count, and a new Cloud Map service
/// (the old one deleted behind the tool's back) is planned as replacing
/// every task and sent as registries.
#[tokio::test(flavor = "multi_thread")]
async fn a_count_alone_updates_a_service_without_a_deployment_and_a_new_registry_redeploys() {
    const UPDATE_SERVICE: &str = "AmazonEC2ContainerServiceV20141113.UpdateService";
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    account.push_image("shop/game-server", "v1").await;
    account.push_image("shop/ranking", "v1").await;
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);

    let more = account.write_stack(&[("count = 3\n", "count = 4\n")]);
    let plan = account.provision(&["plan"], &more);
    assert!(plan.stdout.contains("desired_count: 3 -> 4"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("rollout"), "a count replaces no task: {}", plan.stdout);
    let before = account.moto.requests().len();
    let applied = account.provision(&["apply", "--yes", "--no-wait"], &more);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let updates = account.moto.json_requests(UPDATE_SERVICE, before);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!((&updates[0]["service"], &updates[0]["desiredCount"]), (&json!("game-server"), &json!(4)));
    for member in
        ["taskDefinition", "networkConfiguration", "serviceRegistries", "loadBalancers", "deploymentConfiguration"]
    {
        assert!(updates[0].get(member).is_none(), "{member} sent with a count: {}", updates[0]);
    }

    let namespace = account.namespaces_named("shop.internal").await.remove(0);
    let services = account.discovery_services(&namespace).await;
    let game = services.iter().find(|service| service.name() == Some("game-server")).unwrap();
    account.moto.boto3("servicediscovery", "delete_service", json!({"Id": game.id().unwrap()}));
    let plan = account.provision(&["plan"], &more);
    assert!(plan.stdout.contains("rollout: none -> replaces every task"), "{}", plan.stdout);
    let before = account.moto.requests().len();
    let applied = account.provision(&["apply", "--yes", "--no-wait"], &more);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let updates = account.moto.json_requests(UPDATE_SERVICE, before);
    assert_eq!(updates.len(), 1, "{updates:?}");
    let registries = &updates[0]["serviceRegistries"];
    assert!(text(&registries[0]["registryArn"]).contains(":service/srv-"), "{}", updates[0]);
    assert!(updates[0].get("taskDefinition").is_none(), "the revision did not change: {}", updates[0]);
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &more).code, 0);
}

/// `[aws.tags]` go on every resource beside the two ownership tags. A tag
/// added, changed or removed by hand shows in plan as a `tags` change of
/// exactly that resource, and apply puts the stack's set back with the
/// service's own tag calls; changing the stack's tags retags every kind
/// that has tags, each through its own API (checked against botocore's
/// models by `.ci/run`), and leaves plan clean.
#[tokio::test(flavor = "multi_thread")]
async fn tag_drift_is_planned_as_exactly_that_and_put_back_by_each_services_tag_calls() {
    const FIRST_SERVICE: &str = "\n[[service]]\nname = \"game-server\"";
    let account = Account::new().await;
    let tagged = |tags: &str| format!("\n[aws.tags]\n{tags}\n{FIRST_SERVICE}");
    let stack = account.write_stack_with_every_table(&[(FIRST_SERVICE, &tagged("team = \"games\""))]);
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let cluster = account.moto.boto3("ecs", "describe_clusters", json!({"clusters": ["shop"], "include": ["TAGS"]}));
    let cluster_arn = text(&cluster["clusters"][0]["clusterArn"]);
    let tags_of_cluster = || {
        let tags = account.moto.boto3("ecs", "list_tags_for_resource", json!({"resourceArn": cluster_arn}));
        list(&tags["tags"]).iter().map(|tag| (text(&tag["key"]), text(&tag["value"]))).collect::<BTreeMap<_, _>>()
    };
    assert_eq!(tags_of_cluster().get("team").map(String::as_str), Some("games"));

    // By hand: a tag added to the cluster, one removed from a log group,
    // one changed on the tasks' security group.
    account.moto.boto3(
        "ecs",
        "tag_resource",
        json!({"resourceArn": cluster_arn, "tags": [{"key": "rogue", "value": "1"}]}),
    );
    let log_group = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/shop/game-server";
    account.moto.boto3("logs", "untag_resource", json!({"resourceArn": log_group, "tagKeys": ["team"]}));
    let group = text(&account.security_groups_named("shop-tasks").await[0]["GroupId"]);
    account.ec2("create_tags", json!({"Resources": [group], "Tags": [{"Key": "team", "Value": "web"}]}));

    let changed = |run: &Run| -> BTreeMap<(String, String), Vec<String>> {
        assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
        let plan = json(run);
        list(&plan["steps"])
            .iter()
            .filter(|step| step["action"] != "unchanged")
            .map(|step| {
                let fields = list(&step["changes"]).iter().map(|change| text(&change["field"])).collect();
                ((text(&step["kind"]), text(&step["name"])), fields)
            })
            .collect()
    };
    let drifted = changed(&account.provision(&["plan", "--output", "json", "--detailed-exitcode"], &stack));
    let tags_only = vec!["tags".to_owned()];
    let expected = BTreeMap::from([
        (("cluster".to_owned(), "shop".to_owned()), tags_only.clone()),
        (("log-group".to_owned(), "/ecs/shop/game-server".to_owned()), tags_only.clone()),
        (("security-group".to_owned(), "shop-tasks".to_owned()), tags_only.clone()),
    ]);
    assert_eq!(drifted, expected);
    let plan = account.provision(&["plan"], &stack);
    assert!(
        plan.stdout.contains(
            "tags: app=shop managed-by=provision rogue=1 team=games -> app=shop managed-by=provision team=games"
        ),
        "{}",
        plan.stdout
    );
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stdout.contains("retagged ecs cluster shop"), "{}", apply.stdout);
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
    assert_eq!(tags_of_cluster().get("rogue"), None);

    // The stack's tags change: every kind with tags is retagged.
    let stack = account.write_stack_with_every_table(&[(FIRST_SERVICE, &tagged("team = \"web\"\ncost = \"42\""))]);
    let retagged = changed(&account.provision(&["plan", "--output", "json", "--detailed-exitcode"], &stack));
    assert!(retagged.values().all(|fields| *fields == tags_only), "{retagged:#?}");
    let kinds: std::collections::BTreeSet<&str> = retagged.keys().map(|(kind, _)| kind.as_str()).collect();
    let every = [
        "artifact-bucket",
        "boundary",
        "cache-subnet-group",
        "cluster",
        "discovery-service",
        "ingress-security-group",
        "load-balancer",
        "log-group",
        "namespace",
        "pipeline",
        "repository",
        "role",
        "security-group",
        "service",
        "store",
        "store-secret",
        "store-security-group",
        "target-group",
    ];
    assert_eq!(kinds, every.into_iter().collect(), "{retagged:#?}");
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let clean = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    let tags = tags_of_cluster();
    assert_eq!((tags.get("team").map(String::as_str), tags.get("cost").map(String::as_str)), (Some("web"), Some("42")));
}

/// The account's lock bucket and this app's lock in it.
const LOCK_BUCKET: &str = "provision-123456789012-us-east-1";
const LOCK_KEY: &str = "apps/shop/lock.json";

impl Account {
    /// Makes a role as someone else would: `principal` may assume it, and
    /// it carries `tags`.
    fn make_role(&self, name: &str, principal: serde_json::Value, tags: &[(&str, &str)]) {
        let trust = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        ]});
        let tags: Vec<serde_json::Value> =
            tags.iter().map(|(key, value)| json!({"Key": key, "Value": value})).collect();
        self.moto.boto3(
            "iam",
            "create_role",
            json!({"RoleName": name, "AssumeRolePolicyDocument": trust.to_string(), "Tags": tags}),
        );
    }

    /// The lock object's holder record, if the app is locked.
    fn lock_holder(&self) -> Option<serde_json::Value> {
        let listed = self.moto.boto3("s3", "list_objects_v2", json!({"Bucket": LOCK_BUCKET, "Prefix": LOCK_KEY}));
        list(&listed["Contents"]).first()?;
        let object = self.moto.boto3("s3", "get_object", json!({"Bucket": LOCK_BUCKET, "Key": LOCK_KEY}));
        Some(serde_json::from_str(&text(&object["Body"])).unwrap())
    }

    /// Waits (a minute at most) until a run holds the app's lock.
    fn until_locked(&self) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let listed = self.moto.boto3("s3", "list_buckets", json!({}));
            let bucket_made = list(&listed["Buckets"]).iter().any(|bucket| bucket["Name"] == LOCK_BUCKET);
            if bucket_made && let Some(holder) = self.lock_holder() {
                return holder;
            }
            assert!(std::time::Instant::now() < deadline, "no run took the lock within a minute");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Writes a lock as another run would have: `id`, expiring in `secs`.
    fn plant_lock(&self, id: &str, expires_in: i64) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let listed = self.moto.boto3("s3", "list_buckets", json!({}));
        if !list(&listed["Buckets"]).iter().any(|bucket| bucket["Name"] == LOCK_BUCKET) {
            self.moto.boto3("s3", "create_bucket", json!({"Bucket": LOCK_BUCKET}));
        }
        let holder = json!({"id": id, "who": "arn:aws:iam::123456789012:user/ann (ann@laptop)", "command": "apply",
                            "since": now - 60, "expires": now + expires_in});
        self.moto.boto3(
            "s3",
            "put_object",
            json!({"Bucket": LOCK_BUCKET, "Key": LOCK_KEY, "Body": holder.to_string()}),
        );
    }
}

/// Two applies at once: the second finds the first's lock and refuses,
/// naming its holder and how to break it, before any call that changes
/// anything; the first finishes, releases the lock, and the account is as
/// one apply leaves it. The first runs through a proxy that slows every
/// request, so that it still holds the lock when the second starts.
#[tokio::test(flavor = "multi_thread")]
async fn of_two_applies_at_once_the_second_refuses_with_the_holders_name_and_the_end_state_is_one_applys() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let slow = FaultProxy::slow(&account.moto.url(), std::time::Duration::from_millis(150));
    let mut first = account.command(&["apply", "--yes", "--no-wait"], &stack);
    first.env("AWS_ENDPOINT_URL", slow.url());
    let first = std::thread::spawn(move || run(first));
    let holder = account.until_locked();
    assert_eq!(holder["command"], "apply");
    let id = text(&holder["id"]);

    let second = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    assert!(second.stderr.contains("app shop is locked by `provision apply` of arn:aws:"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("--force-unlock {id}")), "{}", second.stderr);
    assert!(!second.stdout.contains("Applying"), "{}", second.stdout);

    let first = first.join().unwrap();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(account.lock_holder(), None, "the lock is released");
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
    assert_eq!(account.namespaces_named("shop.internal").await.len(), 1);
    assert_eq!(account.security_groups_named("shop-tasks").await.len(), 1);
}

/// A lock whose holder died: refused until broken with its id (a wrong id
/// breaks nothing), and taken over once it has expired.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lock_is_broken_by_force_unlock_with_its_id_and_an_expired_one_is_taken_over() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    account.plant_lock("dead0001", 3600);
    let refused = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "app shop is locked by `provision apply` of arn:aws:iam::123456789012:user/ann (ann@laptop) since"
        ),
        "{}",
        refused.stderr
    );
    let wrong = account.provision(&["apply", "--yes", "--no-wait", "--force-unlock", "other"], &stack);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("the lock of app shop is dead0001, held by `provision apply` of"),
        "{}",
        wrong.stderr
    );
    assert!(account.lock_holder().is_some());

    let broken = account.provision(&["apply", "--yes", "--no-wait", "--force-unlock", "dead0001"], &stack);
    assert_eq!(broken.code, 0, "{}\n{}", broken.stdout, broken.stderr);
    assert!(
        broken.stdout.contains("Broke the lock of app shop: `provision apply` of arn:aws:iam::123456789012:user/ann")
    );
    assert_eq!(account.lock_holder(), None);

    account.plant_lock("dead0002", -1);
    let destroy = account.provision(&["destroy", "--yes"], &stack);
    assert_eq!(destroy.code, 0, "{}\n{}", destroy.stdout, destroy.stderr);
    assert!(destroy.stdout.contains("Took over the lock of app shop (expired)"), "{}", destroy.stdout);
    assert_eq!(account.lock_holder(), None);
}

/// Ctrl-C during an apply releases the lock; the next apply finishes the
/// stack.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_an_apply_releases_its_lock() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let slow = FaultProxy::slow(&account.moto.url(), std::time::Duration::from_millis(150));
    let mut apply = account.command(&["apply", "--yes", "--no-wait"], &stack);
    apply.env("AWS_ENDPOINT_URL", slow.url()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = apply.spawn().unwrap();
    account.until_locked();
    let interrupt = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupt.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("interrupted: apply stopped part way; its lock is released"), "{stderr}");
    assert_eq!(account.lock_holder(), None);
    assert_eq!(account.provision(&["apply", "--yes", "--no-wait"], &stack).code, 0);
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}

/// A role that is not there when plan reads the account but is when apply
/// creates it (made meanwhile by someone else, for another app) is not
/// taken over: apply stops with one line naming it, and the role keeps its
/// tags and its trust. The proxy answers plan's GetRole as IAM would have
/// before the role was made.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_made_by_someone_else_while_apply_runs_is_not_taken_over() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let root = json!({"AWS": "arn:aws:iam::123456789012:root"});
    account.make_role("shop-execution", root, &[("app", "other"), ("managed-by", "provision")]);
    let not_yet = "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name \
                   shop-execution cannot be found.</Message></Error><RequestId>canned</RequestId></ErrorResponse>";
    let proxy = FaultProxy::answering(
        &account.moto.url(),
        "Action=GetRole&(.*&)?RoleName=shop-execution(&|$)",
        404,
        "text/xml",
        not_yet,
        1,
    );
    let mut apply = account.command(&["apply", "--yes", "--no-wait"], &stack);
    apply.env("AWS_ENDPOINT_URL", proxy.url());
    let apply = run(apply);
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains(
            "IAM role shop-execution appeared while this apply ran and is not this app's (it lacks the tags \
             app=shop and managed-by=provision): provision will not take it over"
        ),
        "{}",
        apply.stderr
    );
    assert_eq!(proxy.faults().len(), 1, "plan's GetRole was answered as before the role existed");
    let role = account.moto.boto3("iam", "get_role", json!({"RoleName": "shop-execution"}));
    let tags: Vec<(String, String)> =
        list(&role["Role"]["Tags"]).iter().map(|tag| (text(&tag["Key"]), text(&tag["Value"]))).collect();
    assert!(tags.contains(&("app".to_owned(), "other".to_owned())), "{tags:?}");
    assert!(role["Role"]["AssumeRolePolicyDocument"].to_string().contains("arn:aws:iam::123456789012:root"));
}
