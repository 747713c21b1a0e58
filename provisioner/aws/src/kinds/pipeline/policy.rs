//! What the pipeline's two roles may do. The build runs `provision deploy
//! --apply`: it reads the whole stack, applies what changed and rolls the
//! services out, so it may create and change this app's resources (by
//! name, or by the `app` tag where a service scopes by tag), never others,
//! never its own role or the pipeline's (a change to `[pipeline]` is
//! applied by you), and attach to task roles only the managed policies the
//! stack names. Actions without resource-level permissions in their service
//! are on `*`.

use serde_json::{Value, json};
use stack_spec::Stack;

use crate::engine::{names::Names, state::Live};

/// The build role's policy.
pub fn build(stack: &Stack, live: &Live, bucket: &str) -> Value {
    let names = Names::new(&stack.app);
    let (app, account, region) = (names.app(), &live.account, &live.region);
    let cluster = &stack.aws.cluster;
    let mut statements = vec![
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
            "Sid": "ReadTheStack",
            "Effect": "Allow",
            "Action": [
                "sts:GetCallerIdentity", "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups", "ecs:DescribeClusters", "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions", "ecs:ListTasks", "ecs:DescribeTasks",
                "servicediscovery:ListNamespaces", "servicediscovery:GetNamespace", "servicediscovery:ListServices",
                "servicediscovery:GetService", "servicediscovery:GetOperation", "servicediscovery:ListTagsForResource",
                "servicediscovery:ListInstances", "servicediscovery:GetInstancesHealthStatus",
                "logs:DescribeLogGroups", "logs:ListTagsForResource", "ecr:DescribeRepositories",
                "ecr:DescribeImages", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource",
                "elasticache:DescribeReplicationGroups", "elasticache:DescribeCacheSubnetGroups",
                "elasticache:DescribeCacheClusters", "elasticache:ListTagsForResource", "secretsmanager:DescribeSecret",
                "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:DescribeScalingActivities", "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetHealth",
                "codebuild:BatchGetProjects", "codepipeline:GetPipeline", "codepipeline:ListTagsForResource",
                "iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "s3:GetBucketTagging",
                "s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock", "s3:GetLifecycleConfiguration",
                "route53:GetHostedZone", "cloudwatch:DescribeAlarms"
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
                "ecr:TagResource"
            ],
            "Resource": [format!("arn:aws:ecr:{region}:{account}:repository/{}/*", app)]
        }),
        json!({
            "Sid": "TaskDefinitions",
            "Effect": "Allow",
            "Action": ["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:TagResource"],
            "Resource": ["*"]
        }),
        json!({
            "Sid": "ClusterAndServices",
            "Effect": "Allow",
            "Action": [
                "ecs:CreateCluster", "ecs:UpdateClusterSettings", "ecs:PutClusterCapacityProviders",
                "ecs:CreateService", "ecs:UpdateService", "ecs:TagResource"
            ],
            "Resource": [
                format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}"),
                format!("arn:aws:ecs:{region}:{account}:service/{cluster}/*")
            ]
        }),
        json!({
            "Sid": "CreateTaggedSecurityGroups",
            "Effect": "Allow",
            "Action": ["ec2:CreateSecurityGroup"],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:security-group/*")],
            "Condition": { "StringEquals": { "aws:RequestTag/app": app } }
        }),
        json!({
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
            "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"],
            "Resource": [format!("arn:aws:ec2:{region}:{account}:security-group/*")],
            "Condition": { "StringEquals": { "aws:ResourceTag/app": app } }
        }),
        json!({
            "Sid": "Discovery",
            "Effect": "Allow",
            "Action": [
                "servicediscovery:CreatePrivateDnsNamespace", "servicediscovery:CreateService",
                "servicediscovery:UpdateService", "servicediscovery:TagResource", "route53:CreateHostedZone",
                "route53:ChangeResourceRecordSets"
            ],
            "Resource": ["*"]
        }),
        json!({
            "Sid": "TaskRoles",
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                "iam:UpdateAssumeRolePolicy", "iam:DetachRolePolicy"
            ],
            "Resource": task_roles(&names, account)
        }),
        json!({
            "Sid": "PassTaskRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": task_roles(&names, account),
            "Condition": { "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } }
        }),
        json!({
            "Sid": "LogGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource", "logs:TagLogGroup"],
            "Resource": [format!("arn:aws:logs:{region}:{account}:log-group:/ecs/{app}/*")]
        }),
    ];
    // Task roles get only the managed policies the stack names.
    let managed: Vec<&String> = stack.services.iter().flat_map(|service| &service.aws.task_role_policies).collect();
    if !managed.is_empty() {
        statements.push(json!({
            "Sid": "TheStacksManagedPolicies",
            "Effect": "Allow",
            "Action": ["iam:AttachRolePolicy"],
            "Resource": task_roles(&names, account),
            "Condition": { "ArnEquals": { "iam:PolicyARN": managed } }
        }));
    }
    if stack.services.iter().any(|service| service.autoscaling.is_some()) {
        statements.push(json!({
            "Sid": "Autoscaling",
            "Effect": "Allow",
            "Action": [
                "application-autoscaling:RegisterScalableTarget", "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:TagResource", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"
            ],
            "Resource": ["*"]
        }));
    }
    if !stack.stores.is_empty() {
        statements.push(json!({
            "Sid": "Stores",
            "Effect": "Allow",
            "Action": [
                "elasticache:CreateReplicationGroup", "elasticache:ModifyReplicationGroup",
                "elasticache:IncreaseReplicaCount", "elasticache:DecreaseReplicaCount",
                "elasticache:CreateCacheSubnetGroup", "elasticache:ModifyCacheSubnetGroup",
                "elasticache:AddTagsToResource"
            ],
            "Resource": [
                format!("arn:aws:elasticache:{region}:{account}:replicationgroup:{app}-*"),
                format!("arn:aws:elasticache:{region}:{account}:subnetgroup:{app}-*"),
                format!("arn:aws:elasticache:{region}:{account}:cluster:{app}-*"),
                format!("arn:aws:elasticache:{region}:{account}:parametergroup:*"),
                format!("arn:aws:elasticache:{region}:{account}:securitygroup:*")
            ]
        }));
        statements.push(json!({
            "Sid": "StoreSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue",
                       "secretsmanager:TagResource"],
            "Resource": [format!("arn:aws:secretsmanager:{region}:{account}:secret:{app}/*")]
        }));
    }
    if stack.services.iter().any(|service| service.ingress.is_some()) {
        statements.push(json!({
            "Sid": "Ingress",
            "Effect": "Allow",
            "Action": [
                "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets", "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddTags"
            ],
            "Resource": [
                format!("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{app}-*/*"),
                format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{app}-*/*"),
                format!("arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{app}-*/*")
            ]
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The roles the build may change and pass: the execution role and the
/// task roles, not its own nor the pipeline's.
fn task_roles(names: &Names, account: &str) -> Vec<String> {
    vec![
        format!("arn:aws:iam::{account}:role/{}", names.execution_role()),
        format!("arn:aws:iam::{account}:role/{}-*-task", names.app()),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::ec2::Vpc;

    #[test]
    fn the_build_policy_of_a_stack_with_everything_fits_in_an_inline_policy() {
        let stack =
            stack_spec::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack.toml"))).unwrap();
        let mut stack = stack.clone();
        let everything = "[service.autoscaling]\nmin = 1\nmax = 4\ncpu_percent = 50\n\
                          [service.ingress]\ncertificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/0f1e\"\n";
        let text = format!(
            "[[service]]\nname = \"svc\"\n{everything}\n[service.aws]\ntask_role_policies = [\"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\"]\n"
        );
        stack.services.extend(stack_spec::parse(&text, "x.toml").unwrap().services);
        let vpc = Vpc { id: "vpc-0123456789abcdef0".into(), cidr: "10.0.0.0/16".into() };
        let live = Live::new("123456789012".into(), "ap-southeast-2".into(), &vpc, Default::default());
        let policy = build(&stack, &live, "grpc-fargate-pipeline-123456789012-ap-southeast-2");
        let sids: Vec<&str> =
            policy["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
        for sid in ["Autoscaling", "Stores", "Ingress", "TheStacksManagedPolicies"] {
            assert!(sids.contains(&sid), "{sid}: {sids:?}");
        }
        // IAM's limit on a role's inline policies, whitespace not counted.
        let size = policy.to_string().chars().filter(|c| !c.is_whitespace()).count();
        assert!(size < 10_240, "{size} characters");
    }
}
