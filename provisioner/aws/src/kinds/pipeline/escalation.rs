//! The compromised build, played statically: each known way from the build
//! role to more than it has, asked of the policies `apply` gives the role
//! (its inline policy and its permissions boundary), and answered by IAM's
//! evaluation logic for one account: an explicit Deny in either wins;
//! otherwise both must Allow. Actions and resources match with IAM's `*`
//! and `?`; the conditions are the operators these policies use, with
//! IAM's rule that a `...NotEquals` on a key the request lacks holds.

use std::collections::BTreeMap;

use serde_json::Value;
use stack_spec::{Stack, pipeline::Deploys};

use crate::{
    clients::ec2::Vpc,
    engine::{names::Names, state::Live},
    kinds::boundary::{self, policy_arn},
};

/// One request: an action on a resource, with its condition keys.
struct Request<'a> {
    action: &'a str,
    resource: String,
    context: BTreeMap<&'a str, String>,
}

fn request<'a>(action: &'a str, resource: impl Into<String>, context: &[(&'a str, &str)]) -> Request<'a> {
    Request {
        action,
        resource: resource.into(),
        context: context.iter().map(|(key, value)| (*key, (*value).to_owned())).collect(),
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Decision {
    Allowed,
    /// No statement allows it.
    ImplicitlyDenied,
    ExplicitlyDenied,
}

/// IAM's `*`/`?` wildcard match.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(at) = star {
            p = at + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn condition_holds(condition: &Value, request: &Request<'_>) -> bool {
    let Some(operators) = condition.as_object() else { return true };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().into_iter().flatten().all(|(key, wanted)| {
            let wanted = strings(wanted);
            let have = request.context.get(key.as_str());
            let equal = |have: &String| wanted.iter().any(|value| value == have);
            let like = |have: &String| wanted.iter().any(|value| glob(value, have));
            match operator.as_str() {
                "StringEquals" | "ArnEquals" => have.is_some_and(equal),
                "StringLike" | "ArnLike" => have.is_some_and(like),
                "StringNotEquals" | "ArnNotEquals" => !have.is_some_and(equal),
                other => panic!("the evaluator does not know the condition operator {other}"),
            }
        })
    })
}

fn matches(statement: &Value, request: &Request<'_>) -> bool {
    let action = |patterns: &Value| {
        strings(patterns).iter().any(|pattern| glob(&pattern.to_lowercase(), &request.action.to_lowercase()))
    };
    let resource = |patterns: &Value| strings(patterns).iter().any(|pattern| glob(pattern, &request.resource));
    let acts = match (&statement["Action"], &statement["NotAction"]) {
        (Value::Null, not) => !action(not),
        (actions, _) => action(actions),
    };
    let on = match (&statement["Resource"], &statement["NotResource"]) {
        (Value::Null, not) => !resource(not),
        (resources, _) => resource(resources),
    };
    acts && on && condition_holds(&statement["Condition"], request)
}

/// What IAM decides for `request` made by a role with `policy` and the
/// permissions boundary `boundary`.
fn decide(policy: &Value, boundary: &Value, request: &Request<'_>) -> Decision {
    let statements = |document: &Value| document["Statement"].as_array().cloned().unwrap_or_default();
    let (policy, boundary) = (statements(policy), statements(boundary));
    let effect = |statements: &[Value], effect: &str| {
        statements.iter().any(|statement| statement["Effect"] == effect && matches(statement, request))
    };
    if effect(&policy, "Deny") || effect(&boundary, "Deny") {
        Decision::ExplicitlyDenied
    } else if effect(&policy, "Allow") && effect(&boundary, "Allow") {
        Decision::Allowed
    } else {
        Decision::ImplicitlyDenied
    }
}

/// The repository's stack with everything a build policy can grant: a
/// pipeline deploying the whole stack, autoscaling, an ingress and a
/// managed policy on a task role.
fn everything(deploys: Deploys) -> (Stack, Live) {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack.toml"));
    let mut stack = stack_spec::load(path).unwrap();
    stack.app = "shop".into();
    let text = "[[service]]\nname = \"svc\"\n[service.autoscaling]\nmin = 1\nmax = 4\ncpu_percent = 50\n\
                [service.ingress]\ncertificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/0f1e\"\n\
                [service.aws]\ntask_role_policies = [\"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\"]\n\
                [pipeline]\nrepository = \"org/shop\"\n\
                connection_arn = \"arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e\"\n";
    let extra = stack_spec::parse(text, "x.toml").unwrap();
    stack.services.extend(extra.services);
    let mut pipeline = extra.pipeline.unwrap();
    pipeline.deploys = deploys;
    stack.pipeline = Some(pipeline);
    let vpc = Vpc { id: "vpc-0123456789abcdef0".into(), cidr: "10.0.0.0/16".into() };
    (stack, Live::new("123456789012".into(), "us-east-1".into(), &vpc, Default::default()))
}

/// The build role's inline policy and its boundary, as apply makes them.
fn build_role(deploys: Deploys) -> (Value, Value, Names) {
    let (stack, live) = everything(deploys);
    let names = Names::of(&stack);
    let bucket = names.artifact_bucket(&live.account, &live.region);
    (super::policy::build(&stack, &live, &bucket), boundary::delivery(&names, &live), names)
}

#[test]
fn the_build_policy_of_a_stack_with_everything_fits_in_an_inline_policy() {
    let (mut stack, mut live) = everything(Deploys::Stack);
    // The committed app name and a long region: every ARN carries both.
    stack.app = "grpc-fargate".into();
    live.region = "ap-southeast-2".into();
    let bucket = Names::of(&stack).artifact_bucket(&live.account, &live.region);
    let policy = super::policy::build(&stack, &live, &bucket);
    let sids: Vec<&str> = policy["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
    for sid in ["TargetTrackingAlarms", "Stores", "Ingress", "TheStacksManagedPolicies", "TaskRolePolicies"] {
        assert!(sids.contains(&sid), "{sid}: {sids:?}");
    }
    // IAM's limit on a role's inline policies, whitespace not counted.
    let size = boundary::characters(&policy);
    assert!(size < 10_240, "{size} characters");
}

const ACCOUNT: &str = "123456789012";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

#[test]
fn the_evaluator_matches_as_iam_does() {
    assert!(glob("arn:aws:iam::1:role/shop-*-task", "arn:aws:iam::1:role/shop-admin-x-task"));
    assert!(glob("secret:a/b-??????", "secret:a/b-AbC123") && !glob("secret:a/b-??????", "secret:a/b-AbC12"));
    assert!(!glob("role/shop-build", "role/shop-build2") && glob("*", ""));
    let allow_all = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let probe = request("iam:PassRole", role("x"), &[("iam:PassedToService", "lambda.amazonaws.com")]);
    assert_eq!(decide(&allow_all, &allow_all, &probe), Decision::Allowed);
    let (_, boundary, _) = build_role(Deploys::Stack);
    assert_eq!(decide(&allow_all, &boundary, &probe), Decision::ExplicitlyDenied, "the boundary's own guard rail");
}

#[test]
fn a_compromised_build_cannot_escalate_through_a_task_role() {
    let (policy, boundary, names) = build_role(Deploys::Stack);
    let decide = |request: &Request<'_>| decide(&policy, &boundary, request);
    let app_boundary = policy_arn(ACCOUNT, &names.boundary());
    let task_role = role("shop-game-server-task");
    let keeps_boundary = [("iam:PermissionsBoundary", app_boundary.as_str())];

    // The legitimate path stays open: a policy on a task role that keeps
    // the app's boundary (so whatever it says, the boundary caps it).
    assert_eq!(decide(&request("iam:PutRolePolicy", &task_role, &keeps_boundary)), Decision::Allowed);
    // An inline `*:*` on a task role without the boundary.
    assert_ne!(decide(&request("iam:PutRolePolicy", &task_role, &[])), Decision::Allowed);
    let other_boundary = [("iam:PermissionsBoundary", "arn:aws:iam::123456789012:policy/lax")];
    assert_ne!(decide(&request("iam:PutRolePolicy", &task_role, &other_boundary)), Decision::Allowed);
    // A managed policy the stack does not name (AdministratorAccess).
    let admin = [
        ("iam:PermissionsBoundary", app_boundary.as_str()),
        ("iam:PolicyARN", "arn:aws:iam::aws:policy/AdministratorAccess"),
    ];
    assert_ne!(decide(&request("iam:AttachRolePolicy", &task_role, &admin)), Decision::Allowed);
    // A new role trusting another account, boundary or not; a trust policy
    // rewritten on an existing one.
    for action in ["iam:CreateRole", "iam:UpdateAssumeRolePolicy"] {
        assert_eq!(decide(&request(action, role("shop-x-task"), &keeps_boundary)), Decision::ExplicitlyDenied);
        assert_eq!(decide(&request(action, &task_role, &keeps_boundary)), Decision::ExplicitlyDenied);
    }
    // The boundary removed from a role, put in another's place, or edited.
    for action in ["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"] {
        assert_eq!(decide(&request(action, &task_role, &keeps_boundary)), Decision::ExplicitlyDenied);
    }
    for action in ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"] {
        assert_eq!(decide(&request(action, &app_boundary, &[])), Decision::ExplicitlyDenied, "{action}");
        let own = policy_arn(ACCOUNT, &names.delivery_boundary());
        assert_eq!(decide(&request(action, own, &[])), Decision::ExplicitlyDenied, "{action}");
    }
    // Its own role and the pipeline's: they carry the delivery boundary.
    for own in ["shop-build", "shop-pipeline"] {
        assert_ne!(decide(&request("iam:PutRolePolicy", role(own), &[])), Decision::Allowed);
        assert_ne!(decide(&request("iam:AttachRolePolicy", role(own), &admin)), Decision::Allowed);
    }
    // A role passed to another service (a Lambda or EC2 instance running as
    // a task role), or a role of another app whose name starts the same.
    let to_lambda = [("iam:PassedToService", "lambda.amazonaws.com")];
    assert_eq!(decide(&request("iam:PassRole", &task_role, &to_lambda)), Decision::ExplicitlyDenied);
    let to_ecs = [("iam:PassedToService", "ecs-tasks.amazonaws.com")];
    assert_eq!(decide(&request("iam:PassRole", &task_role, &to_ecs)), Decision::Allowed);
    assert_ne!(decide(&request("iam:PassRole", role("shop-admin-api-task"), &to_ecs)), Decision::Allowed);
    assert_ne!(decide(&request("iam:PutRolePolicy", role("shop-admin-api-task"), &keeps_boundary)), Decision::Allowed);
    // Users and keys: a way in that outlives the build.
    assert_ne!(decide(&request("iam:CreateAccessKey", "arn:aws:iam::123456789012:user/ops", &[])), Decision::Allowed);
}

#[test]
fn a_compromised_build_cannot_write_outside_the_app() {
    let (policy, boundary, _) = build_role(Deploys::Stack);
    let decide = |request: &Request<'_>| decide(&policy, &boundary, request);
    let denied = [
        request("route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z123", &[]),
        request("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:billing", &[]),
        request("ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/other/api", &[]),
        request("ecr:PutImage", "arn:aws:ecr:us-east-1:123456789012:repository/shop-admin/api", &[]),
        request(
            "elasticache:ModifyReplicationGroup",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:shop-admin",
            &[],
        ),
        request(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf",
            &[],
        ),
        request(
            "elasticloadbalancing:ModifyListener",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop-admin/1/2",
            &[],
        ),
        request(
            "servicediscovery:UpdateService",
            "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-1",
            &[("aws:ResourceTag/app", "other")],
        ),
        request(
            "application-autoscaling:PutScalingPolicy",
            "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/0abc",
            &[("aws:ResourceTag/app", "other")],
        ),
        request(
            "ecs:RegisterTaskDefinition",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-game-server:3",
            &[("aws:RequestTag/app", "other")],
        ),
        request(
            "ecs:RegisterTaskDefinition",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/other:1",
            &[("aws:RequestTag/app", "shop")],
        ),
    ];
    for request in denied {
        assert_ne!(decide(&request), Decision::Allowed, "{} on {}", request.action, request.resource);
    }
    let allowed = [
        request("ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/grpc-fargate/game-server", &[]),
        request("ecr:PutImage", "arn:aws:ecr:us-east-1:123456789012:repository/shop/game-server", &[]),
        request(
            "ecs:RegisterTaskDefinition",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-game-server:3",
            &[("aws:RequestTag/app", "shop")],
        ),
        request(
            "cloudwatch:PutMetricAlarm",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-service/grpc-fargate/svc-AlarmHigh-1",
            &[],
        ),
    ];
    for request in allowed {
        assert_eq!(decide(&request), Decision::Allowed, "{} on {}", request.action, request.resource);
    }
}

#[test]
fn a_build_that_deploys_images_changes_no_infrastructure_and_no_role() {
    let (policy, boundary, names) = build_role(Deploys::Images);
    let decide = |request: &Request<'_>| decide(&policy, &boundary, request);
    let app_boundary = policy_arn(ACCOUNT, &names.boundary());
    let keeps_boundary = [("iam:PermissionsBoundary", app_boundary.as_str())];
    let denied = [
        request("iam:PutRolePolicy", role("shop-game-server-task"), &keeps_boundary),
        request("ecs:CreateService", "arn:aws:ecs:us-east-1:123456789012:service/grpc-fargate/game-server", &[]),
        request(
            "ec2:AuthorizeSecurityGroupIngress",
            "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1",
            &[("aws:ResourceTag/app", "shop")],
        ),
        request("route53:CreateHostedZone", "*", &[]),
        request(
            "elasticache:ModifyReplicationGroup",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:shop-leaderboard",
            &[],
        ),
    ];
    for request in denied {
        assert_ne!(decide(&request), Decision::Allowed, "{} on {}", request.action, request.resource);
    }
    let deploy = request("ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/grpc-fargate/ranking", &[]);
    assert_eq!(decide(&deploy), Decision::Allowed);
}

/// The writes on `*` any of the app's policies grant: only those AWS offers
/// on no narrower resource (docs/permissions.md lists them with sources).
pub const UNSCOPABLE_WRITES: [&str; 3] =
    ["servicediscovery:CreatePrivateDnsNamespace", "servicediscovery:TagResource", "route53:CreateHostedZone"];

/// Whether `action` only reads (IAM's access levels List and Read, by the
/// names every service gives them).
pub fn reads(action: &str) -> bool {
    let verb = action.split(':').nth(1).unwrap_or_default();
    ["Describe", "List", "Get", "BatchGet", "BatchCheck"].iter().any(|prefix| verb.starts_with(prefix))
}

#[test]
fn no_write_is_granted_on_every_resource_but_the_unscopable() {
    for deploys in [Deploys::Images, Deploys::Stack] {
        let (policy, _, _) = build_role(deploys);
        for statement in policy["Statement"].as_array().unwrap() {
            if statement["Effect"] != "Allow" || !strings(&statement["Resource"]).iter().any(|r| r == "*") {
                continue;
            }
            for action in strings(&statement["Action"]) {
                assert!(
                    reads(&action) || UNSCOPABLE_WRITES.contains(&action.as_str()),
                    "{action} on * in {}",
                    statement["Sid"]
                );
            }
        }
    }
}
