//! What the pipeline's two roles may do. The build runs `provision
//! deploy`: it reads the whole stack, pushes the services' images, registers
//! their task definitions and rolls the services out; with `deploys =
//! "stack"` it also applies what changed in the infrastructure
//! (`--apply`). Every write names this app's resources exactly (never a
//! `<app>-*` pattern another app's names could match), or, where the
//! service scopes by tag, carries the `app` tag. The build never creates a
//! role nor writes a trust policy, and changes a task role's policies only
//! while the role keeps the app's boundary (see [`crate::kinds::boundary`]).
//! The writes AWS offers only on `*` are Cloud Map's namespace creation and
//! tagging (conditioned on the request's `app` tag) and
//! `route53:CreateHostedZone`, which Cloud Map's CreatePrivateDnsNamespace
//! requires of its caller.

use serde_json::{Value, json};
use stack_spec::{Stack, pipeline::Deploys};

use crate::{
    engine::{names::Names, state::Live},
    kinds::boundary::policy_arn,
};

/// The build role's policy.
pub fn build(stack: &Stack, live: &Live, bucket: &str) -> Value {
    let mut statements = images(stack, live, bucket);
    if stack.pipeline.as_ref().is_some_and(|pipeline| pipeline.deploys == Deploys::Stack) {
        statements.extend(infrastructure(stack, live));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// What deploying new images takes: read the stack, push to the services'
/// repositories, register their task definitions, update their services
/// (and scaling), pass their roles to ECS tasks.
fn images(stack: &Stack, live: &Live, bucket: &str) -> Vec<Value> {
    let names = Names::of(stack);
    let (app, account, region) = (names.app(), &live.account, &live.region);
    let cluster = &stack.aws.cluster;
    let each = |pattern: &dyn Fn(&str) -> String| -> Vec<String> {
        stack.services.iter().map(|service| pattern(&service.name)).collect()
    };
    let (lock_bucket, lock_key) = crate::engine::lock::location(account, region, app);
    let mut statements = vec![
        json!({
            // deploy holds the app's lock while it changes the services
            // (see engine::lock); HEAD of the bucket needs ListBucket.
            "Sid": "TheAppsLock",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [format!("arn:aws:s3:::{lock_bucket}/{lock_key}")]
        }),
        json!({
            "Sid": "TheLockBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{lock_bucket}")]
        }),
        json!({
            "Sid": "BuildLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [format!("arn:aws:logs:{region}:{account}:log-group:{}:*", names.build_log_group())]
        }),
        json!({
            "Sid": "SourceAndCache",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]
        }),
        json!({
            // Reads on `*` (parliament: RESOURCE_STAR): plan looks up by
            // name what may or may not exist, leftovers of removed tables
            // included, across eleven services. They change nothing and
            // read no secret's value (GetSecretValue is not among them).
            "Sid": "ReadTheStack",
            "Effect": "Allow",
            "Action": [
                "sts:GetCallerIdentity", "ec2:Describe*", "ecs:Describe*", "ecs:List*", "servicediscovery:Get*",
                "servicediscovery:List*", "logs:Describe*", "logs:ListTagsForResource", "ecr:Describe*",
                "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource", "elasticache:Describe*",
                "elasticache:ListTagsForResource", "secretsmanager:DescribeSecret", "application-autoscaling:Describe*",
                "elasticloadbalancing:Describe*", "codebuild:BatchGetProjects", "codepipeline:GetPipeline",
                "codepipeline:ListTagsForResource", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion", "s3:GetBucketTagging",
                "s3:GetBucketPolicy", "s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
                "s3:GetLifecycleConfiguration", "route53:GetHostedZone", "route53:ListHostedZonesByName",
                "cloudwatch:DescribeAlarms"
            ],
            "Resource": ["*"]
        }),
        json!({
            "Sid": "Repositories",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:CreateRepository",
                "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:PutLifecyclePolicy",
                "ecr:TagResource", "ecr:UntagResource"
            ],
            "Resource": each(&|service| format!("arn:aws:ecr:{region}:{account}:repository/{}", names.repository(service)))
        }),
        json!({
            // The services' families, each revision tagged as the app's.
            "Sid": "TaskDefinitions",
            "Effect": "Allow",
            "Action": ["ecs:RegisterTaskDefinition", "ecs:TagResource"],
            "Resource": each(&|service| format!("arn:aws:ecs:{region}:{account}:task-definition/{}:*", names.family(service))),
            "Condition": { "StringEquals": { "aws:RequestTag/app": app } }
        }),
        json!({
            "Sid": "Services",
            "Effect": "Allow",
            "Action": ["ecs:UpdateService", "ecs:TagResource", "ecs:UntagResource"],
            "Resource": each(&|service| format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{service}"))
        }),
        json!({
            "Sid": "PassTaskRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": task_roles(stack, &names, account),
            "Condition": { "StringEquals": { "iam:PassedToService": super::super::role::ECS_TASKS } }
        }),
    ];
    let scaled: Vec<&str> = stack
        .services
        .iter()
        .filter(|service| service.autoscaling.is_some())
        .map(|service| service.name.as_str())
        .collect();
    if !scaled.is_empty() {
        let targets = format!("arn:aws:application-autoscaling:{region}:{account}:scalable-target/*");
        statements.extend([
            json!({
                "Sid": "RegisterTheAppsScalableTargets",
                "Effect": "Allow",
                "Action": ["application-autoscaling:RegisterScalableTarget", "application-autoscaling:TagResource"],
                "Resource": [targets],
                "Condition": { "StringEquals": { "aws:RequestTag/app": app } }
            }),
            json!({
                "Sid": "TheAppsScalableTargets",
                "Effect": "Allow",
                "Action": [
                    "application-autoscaling:RegisterScalableTarget", "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy"
                ],
                "Resource": [targets],
                "Condition": { "StringEquals": { "aws:ResourceTag/app": app } }
            }),
            json!({
                // Target tracking's alarms, which Application Auto Scaling
                // makes and deletes in the caller's name.
                "Sid": "TargetTrackingAlarms",
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
                "Resource": scaled
                    .iter()
                    .map(|service| format!("arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-service/{cluster}/{service}-*"))
                    .collect::<Vec<_>>()
            }),
        ]);
    }
    statements
}

/// What applying the rest of the stack takes (`deploys = "stack"`): the
/// cluster, services, security groups, discovery, log groups, stores and
/// load balancers, each by its exact name or the app's tag; the task roles'
/// policies only with the app's boundary kept.
fn infrastructure(stack: &Stack, live: &Live) -> Vec<Value> {
    let names = Names::of(stack);
    let (app, account, region) = (names.app(), &live.account, &live.region);
    let cluster = &stack.aws.cluster;
    let boundary = policy_arn(account, &names.boundary());
    let services = |pattern: &dyn Fn(&str) -> String| -> Vec<String> {
        stack.services.iter().map(|service| pattern(&service.name)).collect()
    };
    let mut statements = vec![
        json!({
            "Sid": "ClusterAndServices",
            "Effect": "Allow",
            "Action": [
                "ecs:CreateCluster", "ecs:UpdateClusterSettings", "ecs:PutClusterCapacityProviders",
                "ecs:CreateService", "ecs:TagResource", "ecs:UntagResource"
            ],
            "Resource": std::iter::once(format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}"))
                .chain(services(&|service| format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{service}")))
                .collect::<Vec<_>>()
        }),
        json!({
            "Sid": "CreateTaggedSecurityGroups",
            "Effect": "Allow",
            "Action": ["ec2:CreateSecurityGroup"],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:security-group/*")],
            "Condition": { "StringEquals": { "aws:RequestTag/app": app } }
        }),
        json!({
            // EC2 authorizes CreateSecurityGroup against the VPC as well as
            // the new group (EC2's examples: "create security groups in a
            // specific VPC"); parliament's data knows only the group
            // (RESOURCE_MISMATCH).
            "Sid": "InTheStacksVpc",
            "Effect": "Allow",
            "Action": ["ec2:CreateSecurityGroup"],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:vpc/{}", live.vpc_id)]
        }),
        json!({
            "Sid": "TagOnCreate",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:security-group/*")],
            "Condition": { "StringEquals": { "ec2:CreateAction": "CreateSecurityGroup" } }
        }),
        json!({
            "Sid": "TheAppsSecurityGroups",
            "Effect": "Allow",
            "Action": [
                "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup",
                "ec2:CreateTags", "ec2:DeleteTags"
            ],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:security-group/*")],
            "Condition": { "StringEquals": { "aws:ResourceTag/app": app } }
        }),
        json!({
            // Cloud Map offers no resource for a namespace not yet made,
            // nor for tagging at creation: the request's tag names the app.
            "Sid": "CreateNamespace",
            "Effect": "Allow",
            "Action": ["servicediscovery:CreatePrivateDnsNamespace", "servicediscovery:TagResource"],
            "Resource": ["*"],
            "Condition": { "StringEquals": { "aws:RequestTag/app": app } }
        }),
        json!({
            "Sid": "CreateDiscoveryServices",
            "Effect": "Allow",
            "Action": ["servicediscovery:CreateService"],
            "Resource": [
                format!("arn:aws:servicediscovery:{region}:{account}:namespace/*"),
                format!("arn:aws:servicediscovery:{region}:{account}:service/*")
            ],
            "Condition": { "StringEquals": { "aws:RequestTag/app": app } }
        }),
        json!({
            "Sid": "TheAppsDiscovery",
            "Effect": "Allow",
            "Action": ["servicediscovery:UpdateService"],
            "Resource": [format!("arn:aws:servicediscovery:{region}:{account}:service/*")],
            "Condition": { "StringEquals": { "aws:ResourceTag/app": app } }
        }),
        json!({
            // Cloud Map's service authorization reference lists namespaces
            // and services for its tag calls; parliament's data lists no
            // resource for them (RESOURCE_MISMATCH).
            "Sid": "TheAppsDiscoveryTags",
            "Effect": "Allow",
            "Action": ["servicediscovery:TagResource", "servicediscovery:UntagResource"],
            "Resource": [
                format!("arn:aws:servicediscovery:{region}:{account}:namespace/*"),
                format!("arn:aws:servicediscovery:{region}:{account}:service/*")
            ],
            "Condition": { "StringEquals": { "aws:ResourceTag/app": app } }
        }),
        json!({
            // What Cloud Map's CreatePrivateDnsNamespace asks of its caller
            // (AWS Cloud Map API permissions reference); Route 53 has no
            // resource for a zone not yet made. No record set is changed by
            // the caller: ECS registers the tasks with its own role.
            "Sid": "NamespaceHostedZone",
            "Effect": "Allow",
            "Action": ["route53:CreateHostedZone"],
            "Resource": ["*"]
        }),
        json!({
            "Sid": "TaskRolePolicies",
            "Effect": "Allow",
            "Action": ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:DetachRolePolicy"],
            "Resource": task_roles(stack, &names, account),
            "Condition": { "ArnEquals": { "iam:PermissionsBoundary": boundary } }
        }),
        json!({
            "Sid": "LogGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource", "logs:TagLogGroup",
                       "logs:UntagResource"],
            "Resource": services(&|service| format!("arn:aws:logs:{region}:{account}:log-group:{}", names.log_group(service)))
        }),
    ];
    // Task roles get only the managed policies the stack names.
    let managed: Vec<&String> = stack.services.iter().flat_map(|service| &service.aws.task_role_policies).collect();
    if !managed.is_empty() {
        statements.push(json!({
            "Sid": "TheStacksManagedPolicies",
            "Effect": "Allow",
            "Action": ["iam:AttachRolePolicy"],
            "Resource": task_roles(stack, &names, account),
            "Condition": { "ArnEquals": { "iam:PolicyARN": managed, "iam:PermissionsBoundary": boundary } }
        }));
    }
    if !stack.stores.is_empty() {
        let stores = |pattern: &dyn Fn(&str) -> String| -> Vec<String> {
            stack.stores.iter().map(|store| pattern(&names.store(&store.name))).collect()
        };
        let mut resources = stores(&|id| format!("arn:aws:elasticache:{region}:{account}:replicationgroup:{id}"));
        resources.extend(stores(&|id| format!("arn:aws:elasticache:{region}:{account}:subnetgroup:{id}")));
        // A replication group's nodes are named after it: <id>-001, ...
        resources.extend(stores(&|id| format!("arn:aws:elasticache:{region}:{account}:cluster:{id}-*")));
        resources.push(format!("arn:aws:elasticache:{region}:{account}:parametergroup:default.*"));
        statements.push(json!({
            "Sid": "Stores",
            "Effect": "Allow",
            "Action": [
                "elasticache:CreateReplicationGroup", "elasticache:ModifyReplicationGroup",
                "elasticache:IncreaseReplicaCount", "elasticache:DecreaseReplicaCount",
                "elasticache:CreateCacheSubnetGroup", "elasticache:ModifyCacheSubnetGroup",
                "elasticache:AddTagsToResource", "elasticache:RemoveTagsFromResource"
            ],
            "Resource": resources
        }));
        statements.push(json!({
            "Sid": "StoreSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue",
                       "secretsmanager:TagResource", "secretsmanager:UntagResource"],
            // Secrets Manager adds six characters to a secret's ARN.
            "Resource": stack
                .stores
                .iter()
                .map(|store| format!("arn:aws:secretsmanager:{region}:{account}:secret:{}-??????", names.store_secret(&store.name)))
                .collect::<Vec<_>>()
        }));
    }
    let exposed: Vec<String> = stack
        .services
        .iter()
        .filter(|service| service.ingress.is_some())
        .map(|service| names.load_balancer(&service.name))
        .collect();
    if !exposed.is_empty() {
        let resources: Vec<String> = exposed
            .iter()
            .flat_map(|name| {
                [
                    format!("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/*"),
                    format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/*"),
                    format!("arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{name}/*"),
                ]
            })
            .collect();
        statements.push(json!({
            // parliament (RESOURCE_MISMATCH) knows ModifyListener only on a
            // network load balancer's listener; ELBv2's reference lists an
            // application load balancer's (listener/app/...) as well.
            "Sid": "Ingress",
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets", "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags"
            ],
            "Resource": resources
        }));
    }
    statements
}

/// The roles the build may pass (and, with `deploys = "stack"`, change the
/// policies of): the execution role and each service's task role, by exact
/// name; never its own nor the pipeline's.
fn task_roles(stack: &Stack, names: &Names, account: &str) -> Vec<String> {
    std::iter::once(names.execution_role())
        .chain(stack.services.iter().map(|service| names.task_role(&service.name)))
        .map(|role| format!("arn:aws:iam::{account}:role/{role}"))
        .collect()
}

/// What the pipeline does: keep artifacts in its bucket, start and follow
/// the build project, use the connection (CodeConnections or CodeStar
/// Connections, whichever issued it).
pub fn pipeline(names: &Names, live: &Live, bucket: &str, connection_arn: &str) -> Value {
    let prefix = connection_arn.split(':').nth(2).unwrap_or("codeconnections");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Artifacts",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetBucketVersioning",
                    "s3:GetBucketLocation", "s3:ListBucket"
                ],
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]
            },
            {
                "Sid": "Build",
                "Effect": "Allow",
                "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                "Resource": [format!(
                    "arn:aws:codebuild:{}:{}:project/{}",
                    live.region,
                    live.account,
                    names.build_project()
                )]
            },
            {
                "Sid": "Source",
                "Effect": "Allow",
                "Action": [format!("{prefix}:UseConnection")],
                "Resource": [connection_arn]
            }
        ]
    })
}
