//! Least privilege on AWS, read back with boto3 (a client nobody here
//! wrote) from what the real `provision` made on moto: every role carries
//! the app's permissions boundary and trusts its service for this account
//! only; the build role writes nothing on `*` but what AWS offers on no
//! narrower resource and no IAM write without the boundary condition; task
//! definitions run read-only with no capability; the artifact bucket
//! refuses plain HTTP. Then what a compromised build (or a person) adds
//! behind the tool's back (a second inline policy, a trust statement for
//! another account, a boundary removed, an all-traffic rule) shows in plan
//! and is gone after apply.

mod aws_account;

use std::process::{Command, Stdio};

use aws_account::{Account, list, text};
use serde_json::{Value, json};
use test_support::find_executable;

const CONNECTION: &str =
    "arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e2d3c-aaaa-4bbb-8ccc-0123456789ab";
const ACCOUNT: &str = "123456789012";
const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/shop-boundary";
const DELIVERY_BOUNDARY: &str = "arn:aws:iam::123456789012:policy/shop-delivery-boundary";
/// The writes AWS offers on `*` only (docs/permissions.md gives sources).
const UNSCOPABLE_WRITES: [&str; 3] =
    ["servicediscovery:CreatePrivateDnsNamespace", "servicediscovery:TagResource", "route53:CreateHostedZone"];

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        _ => list(value).iter().map(text).collect(),
    }
}

fn reads(action: &str) -> bool {
    let verb = action.split(':').nth(1).unwrap_or_default();
    ["Describe", "List", "Get", "BatchGet", "BatchCheck"].iter().any(|prefix| verb.starts_with(prefix))
}

impl Account {
    fn call(&self, service: &str, operation: &str, params: Value) -> Value {
        self.moto.boto3(service, operation, params)
    }

    /// The app's roles as IAM lists them (boundary included: ListRoles
    /// leaves it out, GetRole has it).
    fn roles(&self) -> Vec<Value> {
        let listed = self.call("iam", "list_roles", json!({}));
        list(&listed["Roles"])
            .iter()
            .filter(|role| text(&role["RoleName"]).starts_with("shop-"))
            .map(|role| self.call("iam", "get_role", json!({"RoleName": role["RoleName"]}))["Role"].clone())
            .collect()
    }

    fn policy_document(&self, arn: &str) -> Value {
        let policy = self.call("iam", "get_policy", json!({"PolicyArn": arn}));
        let version = policy["Policy"]["DefaultVersionId"].clone();
        self.call("iam", "get_policy_version", json!({"PolicyArn": arn, "VersionId": version}))["PolicyVersion"]
            ["Document"]
            .clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_is_bounded_and_the_build_writes_only_the_apps_resources() {
    // A stack with every table a build policy grants for: a pipeline that
    // deploys the whole stack, an ingress, autoscaling, a store.
    let account = Account::new().await;
    account.route_to_the_internet();
    let certificate = account.call("acm", "request_certificate", json!({"DomainName": "game.example.com"}));
    let pipeline = format!(
        "log_retention_days = 14\n\n[pipeline]\nrepository = \"my-org/shop\"\nconnection_arn = \"{CONNECTION}\"\n\
         deploys = \"stack\"\n"
    );
    let exposed = format!(
        "depends_on = [\"ranking\"]\n\n[service.ingress]\ncertificate_arn = \"{}\"\n\n\
         [service.autoscaling]\nmin = 1\nmax = 3\ncpu_percent = 50\n",
        text(&certificate["CertificateArn"])
    );
    let store = "\n[service.stores]\nRANKING_STORE = \"board\"\n\n[[store]]\nname = \"board\"\n";
    let stack = account.write_stack(&[
        ("log_retention_days = 14\n", &pipeline),
        ("depends_on = [\"ranking\"]\n", &exposed),
        (
            "secrets = { RANKING_STORE = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:ranking-store\" }\n",
            store,
        ),
    ]);
    let applied = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);

    // Every role the tool made carries a boundary, and trusts one service
    // acting for this account.
    let roles = account.roles();
    let mut names: Vec<String> = roles.iter().map(|role| text(&role["RoleName"])).collect();
    names.sort();
    assert_eq!(
        names,
        ["shop-build", "shop-execution", "shop-game-server-task", "shop-pipeline", "shop-ranking-task"],
        "{roles:?}"
    );
    for role in &roles {
        let name = text(&role["RoleName"]);
        let boundary = text(&role["PermissionsBoundary"]["PermissionsBoundaryArn"]);
        let expected = if name == "shop-build" || name == "shop-pipeline" { DELIVERY_BOUNDARY } else { BOUNDARY };
        assert_eq!(boundary, expected, "{name}: {role}");
        let trust = list(&role["AssumeRolePolicyDocument"]["Statement"]);
        assert_eq!(trust.len(), 1, "{name}: {trust:?}");
        assert_eq!(trust[0]["Condition"], json!({"StringEquals": {"aws:SourceAccount": ACCOUNT}}), "{name}");
    }
    // The boundaries: what the services need; delivery's guard rails.
    let services = account.policy_document(BOUNDARY);
    let sids: Vec<String> = list(&services["Statement"]).iter().map(|s| text(&s["Sid"])).collect();
    assert_eq!(sids, ["EcrLogin", "PullImages", "WriteLogs", "ReadSecrets"], "{services}");
    let delivery = account.policy_document(DELIVERY_BOUNDARY);
    let rails = list(&delivery["Statement"]);
    let rail =
        |sid: &str| rails.iter().find(|s| s["Sid"] == sid).cloned().unwrap_or_else(|| panic!("{sid}: {rails:?}"));
    assert_eq!(
        rail("NoRoleChangedWithoutTheAppsBoundary")["Condition"]["ArnNotEquals"]["iam:PermissionsBoundary"],
        BOUNDARY
    );
    assert_eq!(rail("NoBoundaryChanged")["Resource"], json!([BOUNDARY, DELIVERY_BOUNDARY]));

    // The build role: no IAM write without the boundary condition, no
    // write on `*` but the unscopable ones, no `<app>-*` pattern.
    let policy = account.call("iam", "get_role_policy", json!({"RoleName": "shop-build", "PolicyName": "provision"}));
    let statements = list(&policy["PolicyDocument"]["Statement"]);
    for statement in statements.iter().filter(|statement| statement["Effect"] == "Allow") {
        let actions = strings(&statement["Action"]);
        let resources = strings(&statement["Resource"]);
        for action in &actions {
            if action.starts_with("iam:") && !reads(action) && action != "iam:PassRole" {
                assert_eq!(
                    statement["Condition"]["ArnEquals"]["iam:PermissionsBoundary"], BOUNDARY,
                    "{action} without the boundary condition: {statement}"
                );
            }
            if resources.iter().any(|resource| resource == "*") {
                assert!(reads(action) || UNSCOPABLE_WRITES.contains(&action.as_str()), "{action} on *: {statement}");
            }
        }
        for resource in &resources {
            assert!(!resource.contains("shop-*"), "a pattern another app's names match: {resource}");
        }
        assert!(
            !actions.iter().any(|action| ["iam:CreateRole", "iam:UpdateAssumeRolePolicy"].contains(&action.as_str())),
            "{statement}"
        );
    }

    // Tasks: read-only root, every capability dropped.
    let definition = account.call("ecs", "describe_task_definition", json!({"taskDefinition": "shop-game-server"}));
    let container = &definition["taskDefinition"]["containerDefinitions"][0];
    assert_eq!(container["readonlyRootFilesystem"], true, "{container}");
    assert_eq!(container["linuxParameters"]["capabilities"]["drop"], json!(["ALL"]), "{container}");

    // The artifact bucket refuses plain HTTP.
    let bucket = account.call("s3", "get_bucket_policy", json!({"Bucket": "shop-pipeline-123456789012-us-east-1"}));
    let bucket: Value = serde_json::from_str(&text(&bucket["Policy"])).unwrap();
    assert_eq!(bucket["Statement"][0]["Effect"], "Deny");
    assert_eq!(bucket["Statement"][0]["Condition"], json!({"Bool": {"aws:SecureTransport": "false"}}));
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0, "a second plan is clean");

    // Every policy the tool made, through an outside linter.
    let mut policies = vec![
        ("shop-boundary".to_owned(), services),
        ("shop-delivery-boundary".to_owned(), delivery),
        ("bucket".to_owned(), bucket),
    ];
    for role in ["shop-execution", "shop-build", "shop-pipeline"] {
        let inline = account.call("iam", "get_role_policy", json!({"RoleName": role, "PolicyName": "provision"}));
        policies.push((role.to_owned(), inline["PolicyDocument"].clone()));
    }
    for role in &roles {
        policies.push((format!("{} trust", text(&role["RoleName"])), role["AssumeRolePolicyDocument"].clone()));
    }
    let findings = lint(&policies);
    let unjustified: Vec<&String> = findings.iter().filter(|finding| !JUSTIFIED.contains(&finding.as_str())).collect();
    assert_eq!(unjustified, Vec::<&String>::new(), "parliament's findings without a reason beside the policy");
    // The linter ran and reads these policies: what it is known to report
    // of them, it reports.
    let unseen: Vec<&&str> = JUSTIFIED.iter().filter(|justified| !findings.iter().any(|f| f == *justified)).collect();
    assert!(unseen.is_empty(), "justified findings parliament no longer reports: {unseen:?} (of {findings:?})");
}

/// What parliament (an IAM linter nobody here wrote) reports of each
/// statement of each named policy, as `NAME SID ISSUE`: a statement at a
/// time, so a finding names its statement. Its command line's own `main`
/// (what `parliament --json --string` runs) is called once per statement
/// in one Python process: a process per statement cost this test 40 s.
fn lint(policies: &[(String, Value)]) -> Vec<String> {
    const LINT: &str = r#"
import contextlib, io, json, sys
from parliament import cli
for name, sid, statement in json.load(sys.stdin):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main(["parliament", "--json", "--string", statement])
    for line in printed.getvalue().splitlines():
        if line.strip():
            print(f"{name} {sid} {json.loads(line)['issue']}")
"#;
    let parliament = find_executable("PARLIAMENT", "parliament", "pip install parliament (bash .ci/run does)");
    let python = parliament.with_file_name("python3");
    let mut statements = Vec::new();
    for (name, policy) in policies {
        for (index, statement) in list(&policy["Statement"]).into_iter().enumerate() {
            let sid = statement["Sid"].as_str().map_or_else(|| format!("statement{index}"), str::to_owned);
            let alone = json!({"Version": "2012-10-17", "Statement": [statement]});
            statements.push(json!([name, sid, alone.to_string()]));
        }
    }
    let mut child = Command::new(&python)
        .args(["-c", LINT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {} for parliament: {error}", python.display()));
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), Value::from(statements).to_string().as_bytes())
        .expect("the statements to parliament");
    let output = child.wait_with_output().expect("parliament's findings");
    assert!(output.status.success(), "parliament failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

/// The findings parliament reports that stand, each justified where the
/// statement is made (`kinds/boundary.rs`, `kinds/pipeline/policy.rs`).
const JUSTIFIED: &[&str] = &[
    // A boundary's allow is a ceiling, not a grant.
    "shop-delivery-boundary WhatDeliveryCalls RESOURCE_STAR",
    // Plan's reads, by name, of what may or may not exist.
    "shop-build ReadTheStack RESOURCE_STAR",
    // EC2 checks CreateSecurityGroup against the VPC; parliament's data
    // knows only the group.
    "shop-build InTheStacksVpc RESOURCE_MISMATCH",
    // ModifyListener on an application load balancer's listener, which
    // parliament's data knows for network load balancers only.
    "shop-build Ingress RESOURCE_MISMATCH",
    // Cloud Map's tag calls on the app's namespace and services, which
    // parliament's data knows on no resource.
    "shop-build TheAppsDiscoveryTags RESOURCE_MISMATCH",
    // Trust policies name a principal and no resource: parliament reads
    // every policy as an identity policy and calls that malformed.
    "shop-build trust statement0 MALFORMED",
    "shop-execution trust statement0 MALFORMED",
    "shop-game-server-task trust statement0 MALFORMED",
    "shop-pipeline trust statement0 MALFORMED",
    "shop-ranking-task trust statement0 MALFORMED",
];

#[tokio::test(flavor = "multi_thread")]
async fn what_is_added_behind_the_tools_back_shows_in_plan_and_goes_with_apply() {
    let account = Account::new().await;
    let stack = account.write_stack(&[]);
    let applied = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);

    // A second inline policy on a task role, a trust statement for another
    // account on the execution role, a task role's boundary removed, an
    // all-traffic rule from anywhere on the tasks' group.
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    account.call(
        "iam",
        "put_role_policy",
        json!({"RoleName": "shop-game-server-task", "PolicyName": "backdoor", "PolicyDocument": everything.to_string()}),
    );
    let role = account.call("iam", "get_role", json!({"RoleName": "shop-execution"}));
    let mut trust = role["Role"]["AssumeRolePolicyDocument"].clone();
    trust["Statement"].as_array_mut().unwrap().push(
        json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}),
    );
    account.call(
        "iam",
        "update_assume_role_policy",
        json!({"RoleName": "shop-execution", "PolicyDocument": trust.to_string()}),
    );
    account.call("iam", "delete_role_permissions_boundary", json!({"RoleName": "shop-ranking-task"}));
    let group = account.security_groups_named("shop-tasks").await.remove(0);
    account.ec2(
        "authorize_security_group_ingress",
        json!({"GroupId": group["GroupId"], "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
    );

    let plan = account.provision(&["plan"], &stack);
    for shown in ["backdoor", "999999999999", "all traffic from 0.0.0.0/0"] {
        assert!(plan.stdout.contains(shown), "{shown}: {}", plan.stdout);
    }
    let changed =
        |name: &str| plan.stdout.lines().any(|line| line.trim_start().starts_with('~') && line.contains(name));
    for name in ["shop-game-server-task", "shop-execution", "shop-ranking-task", "shop-tasks"] {
        assert!(changed(name), "{name}: {}", plan.stdout);
    }

    let applied = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let inline = account.call("iam", "list_role_policies", json!({"RoleName": "shop-game-server-task"}));
    assert_eq!(list(&inline["PolicyNames"]), Vec::<Value>::new());
    let role = account.call("iam", "get_role", json!({"RoleName": "shop-execution"}));
    assert_eq!(list(&role["Role"]["AssumeRolePolicyDocument"]["Statement"]).len(), 1, "{role}");
    let role = account.call("iam", "get_role", json!({"RoleName": "shop-ranking-task"}));
    assert_eq!(role["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"], BOUNDARY);
    let group = account.security_groups_named("shop-tasks").await.remove(0);
    assert!(list(&group["IpPermissions"]).iter().all(|permission| permission["IpProtocol"] != "-1"), "{group}");
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &stack).code, 0);
}
