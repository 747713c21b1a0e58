//! `[pipeline]` on AWS: the real `provision` against moto's server, what it
//! made read back with boto3 (a client nobody here wrote): the artifact
//! bucket, the build project, the two roles and what they may do, the
//! CodePipeline with its stages and trigger. Then the table goes (all of it
//! goes with it) and comes back for destroy.

mod aws_account;

use aws_account::{Account, list, text};
use serde_json::{Value, json};

const CONNECTION: &str =
    "arn:aws:codeconnections:us-east-1:123456789012:connection/0f1e2d3c-aaaa-4bbb-8ccc-0123456789ab";
const BUCKET: &str = "shop-pipeline-123456789012-us-east-1";

fn pipeline_table(extra: &str) -> String {
    format!("\n[pipeline]\nrepository = \"my-org/shop\"\nconnection_arn = \"{CONNECTION}\"\n{extra}")
}

impl Account {
    fn call(&self, service: &str, operation: &str, params: Value) -> Value {
        self.moto.boto3(service, operation, params)
    }

    /// The app's pipeline resources that exist: bucket, project, pipeline,
    /// roles.
    fn delivery_resources(&self) -> Vec<String> {
        let mut found = Vec::new();
        let buckets = self.call("s3", "list_buckets", json!({}));
        if list(&buckets["Buckets"]).iter().any(|bucket| bucket["Name"] == BUCKET) {
            found.push(format!("bucket {BUCKET}"));
        }
        let projects = self.call("codebuild", "batch_get_projects", json!({"names": ["shop-deploy"]}));
        found.extend(list(&projects["projects"]).iter().map(|project| format!("project {}", text(&project["name"]))));
        let pipelines = self.call("codepipeline", "list_pipelines", json!({}));
        found.extend(
            list(&pipelines["pipelines"]).iter().map(|pipeline| format!("pipeline {}", text(&pipeline["name"]))),
        );
        let roles = self.call("iam", "list_roles", json!({}));
        found.extend(
            list(&roles["Roles"])
                .iter()
                .map(|role| text(&role["RoleName"]))
                .filter(|name| name == "shop-build" || name == "shop-pipeline")
                .map(|name| format!("role {name}")),
        );
        let policies = self.call("iam", "list_policies", json!({"Scope": "Local"}));
        found.extend(
            list(&policies["Policies"])
                .iter()
                .map(|policy| text(&policy["PolicyName"]))
                .filter(|name| name == "shop-delivery-boundary")
                .map(|name| format!("boundary {name}")),
        );
        found
    }

    /// A role's inline policy statements by Sid.
    fn statements(&self, role: &str) -> Vec<Value> {
        let policy = self.call("iam", "get_role_policy", json!({"RoleName": role, "PolicyName": "provision"}));
        list(&policy["PolicyDocument"]["Statement"])
    }
}

fn statement<'a>(statements: &'a [Value], sid: &str) -> &'a Value {
    statements.iter().find(|statement| statement["Sid"] == sid).unwrap_or_else(|| panic!("no {sid}: {statements:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_table_applies_to_a_bucket_project_roles_and_pipeline_and_goes_with_it() {
    let account = Account::new().await;
    let stack = account
        .write_stack(&[("log_retention_days = 14\n", &format!("log_retention_days = 14\n{}", pipeline_table("")))]);
    let planned = account.provision(&["plan"], &stack);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let applied = account.provision(&["apply", "--yes"], &stack);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);

    // The bucket: encrypted, closed to the public, expiring, tagged.
    let encryption = account.call("s3", "get_bucket_encryption", json!({"Bucket": BUCKET}));
    assert_eq!(
        encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    let block = account.call("s3", "get_public_access_block", json!({"Bucket": BUCKET}));
    assert_eq!(
        block["PublicAccessBlockConfiguration"],
        json!({"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true})
    );
    let lifecycle = account.call("s3", "get_bucket_lifecycle_configuration", json!({"Bucket": BUCKET}));
    assert_eq!(lifecycle["Rules"][0]["Expiration"]["Days"], 30, "{lifecycle}");
    let tags = account.call("s3", "get_bucket_tagging", json!({"Bucket": BUCKET}));
    assert!(list(&tags["TagSet"]).contains(&json!({"Key": "app", "Value": "shop"})), "{tags}");

    // The project: CodePipeline's source and artifacts, the buildspec, a
    // Linux container that is not privileged (no Docker in the build), the
    // build role, the logs and the cache.
    let projects = account.call("codebuild", "batch_get_projects", json!({"names": ["shop-deploy"]}));
    let project = &list(&projects["projects"])[0];
    assert_eq!(project["source"]["type"], "CODEPIPELINE");
    assert_eq!(project["source"]["buildspec"], "pipeline/buildspec.yml");
    assert_eq!(project["artifacts"]["type"], "CODEPIPELINE");
    let environment = &project["environment"];
    assert_eq!(
        (&environment["type"], &environment["computeType"], &environment["privilegedMode"]),
        (&json!("LINUX_CONTAINER"), &json!("BUILD_GENERAL1_MEDIUM"), &json!(false))
    );
    assert_eq!(environment["image"], "aws/codebuild/standard:7.0");
    assert!(text(&project["serviceRole"]).ends_with(":role/shop-build"), "{project}");
    assert_eq!(project["timeoutInMinutes"], 60);
    assert_eq!(project["logsConfig"]["cloudWatchLogs"]["groupName"], "/codebuild/shop");
    assert_eq!(project["cache"], json!({"type": "S3", "location": format!("{BUCKET}/cache")}));
    let groups = account.call("logs", "describe_log_groups", json!({"logGroupNamePrefix": "/codebuild/shop"}));
    assert_eq!(list(&groups["logGroups"]).len(), 1);

    // The build role: CodeBuild's, allowed the deploy on this app only.
    let role = account.call("iam", "get_role", json!({"RoleName": "shop-build"}));
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "codebuild.amazonaws.com"
    );
    let build = account.statements("shop-build");
    // No registry login: the build pushes through ECR's own calls.
    assert!(!build.iter().any(|s| s.to_string().contains("ecr:GetAuthorizationToken")), "{build:?}");
    // Each of the app's resources by its exact name.
    assert_eq!(
        statement(&build, "Repositories")["Resource"],
        json!([
            "arn:aws:ecr:us-east-1:123456789012:repository/shop/game-server",
            "arn:aws:ecr:us-east-1:123456789012:repository/shop/ranking"
        ])
    );
    assert_eq!(
        statement(&build, "Services")["Resource"],
        json!([
            "arn:aws:ecs:us-east-1:123456789012:service/shop/game-server",
            "arn:aws:ecs:us-east-1:123456789012:service/shop/ranking"
        ])
    );
    // It may pass the task roles to ECS tasks, never its own or the
    // pipeline's; by default (deploys = "images") it changes no role and no
    // other infrastructure.
    let pass = statement(&build, "PassTaskRoles");
    assert_eq!(
        pass["Resource"],
        json!([
            "arn:aws:iam::123456789012:role/shop-execution",
            "arn:aws:iam::123456789012:role/shop-game-server-task",
            "arn:aws:iam::123456789012:role/shop-ranking-task"
        ])
    );
    assert_eq!(pass["Condition"]["StringEquals"]["iam:PassedToService"], "ecs-tasks.amazonaws.com");
    let granted: Vec<String> = build.iter().flat_map(|s| list(&s["Action"])).map(|a| text(&a)).collect();
    for infrastructure in
        ["iam:PutRolePolicy", "ecs:CreateService", "ec2:AuthorizeSecurityGroupIngress", "route53:CreateHostedZone"]
    {
        assert!(!granted.contains(&infrastructure.to_owned()), "{infrastructure}: {granted:?}");
    }
    let environment = &project["environment"]["environmentVariables"];
    assert_eq!(*environment, json!([{"name": "PROVISION_DEPLOY_APPLY", "value": "false", "type": "PLAINTEXT"}]));
    assert_eq!(
        statement(&build, "SourceAndCache")["Resource"],
        json!([format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")])
    );
    assert!(
        build.iter().all(|statement| statement["Action"] != json!("*") && statement["Action"] != json!(["*"])),
        "no action is granted wholesale: {build:?}"
    );

    // The pipeline role: the bucket, the project, the connection.
    let pipeline_role = account.statements("shop-pipeline");
    assert_eq!(
        statement(&pipeline_role, "Build")["Resource"],
        json!(["arn:aws:codebuild:us-east-1:123456789012:project/shop-deploy"])
    );
    assert_eq!(statement(&pipeline_role, "Source")["Action"], json!(["codeconnections:UseConnection"]));
    assert_eq!(statement(&pipeline_role, "Source")["Resource"], json!([CONNECTION]));

    // The pipeline: V2, source through the connection, the build, a push
    // trigger on the branch, the bucket as its store.
    let pipeline = account.call("codepipeline", "get_pipeline", json!({"name": "shop"}));
    let declaration = &pipeline["pipeline"];
    assert_eq!(declaration["pipelineType"], "V2");
    assert_eq!(declaration["artifactStore"], json!({"type": "S3", "location": BUCKET}));
    assert!(text(&declaration["roleArn"]).ends_with(":role/shop-pipeline"));
    let stages: Vec<Value> = list(&declaration["stages"]);
    assert_eq!(stages.iter().map(|stage| text(&stage["name"])).collect::<Vec<_>>(), ["Source", "Deploy"]);
    let source = &stages[0]["actions"][0];
    assert_eq!(source["actionTypeId"]["provider"], "CodeStarSourceConnection");
    assert_eq!(
        source["configuration"],
        json!({"ConnectionArn": CONNECTION, "FullRepositoryId": "my-org/shop", "BranchName": "main", "OutputArtifactFormat": "CODE_ZIP"})
    );
    let build_action = &stages[1]["actions"][0];
    assert_eq!(build_action["actionTypeId"]["provider"], "CodeBuild");
    assert_eq!(build_action["configuration"]["ProjectName"], "shop-deploy");
    assert_eq!(declaration["triggers"][0]["gitConfiguration"]["push"][0]["branches"]["includes"], json!(["main"]));

    let again = account.provision(&["plan", "--detailed-exitcode"], &stack);
    assert_eq!(again.code, 0, "a second plan is clean: {}", again.stdout);

    // `pipeline run` starts an execution and follows it (moto's succeed at
    // once and have no stage detail; following is unit-tested against
    // scripted answers), `pipeline status` lists it.
    let run = account.provision(&["pipeline", "run"], &stack);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("connection: cannot check it"), "moto has no CodeConnections: {}", run.stdout);
    let id = run.stdout.split("execution ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect(&run.stdout);
    assert!(run.stdout.contains(&format!("pipeline shop: execution {id} succeeded")), "{}", run.stdout);
    let status = account.provision(&["pipeline", "status"], &stack);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.lines().any(|line| line.contains(id) && line.contains("Succeeded")), "{}", status.stdout);
    let as_json = account.provision(&["pipeline", "status", "-o", "json"], &stack);
    let executions = aws_account::json(&as_json);
    test_support::assert_matches_schema("pipeline-status", &executions);
    assert_eq!(
        (executions["executions"][0]["id"].as_str(), executions["executions"][0]["status"].as_str()),
        (Some(id), Some("Succeeded"))
    );
    let whole = account.provision(&["status"], &stack);
    assert!(whole.stdout.contains("pipeline shop\n"), "provision status shows it too: {}", whole.stdout);
    assert!(whole.stdout.lines().any(|line| line.contains(id)), "{}", whole.stdout);
    let whole = aws_account::json(&account.provision(&["status", "-o", "json"], &stack));
    test_support::assert_matches_schema("status", &whole);
    assert_eq!(whole["pipeline"]["executions"][0]["id"].as_str(), Some(id), "{whole:#}");

    // Without the table, everything it made goes.
    let without = account.write_stack(&[]);
    let planned = account.provision(&["plan"], &without);
    for step in [
        "pipeline shop",
        "build project shop-deploy",
        "s3 bucket",
        "iam role shop-build",
        "iam role shop-pipeline",
        "iam boundary shop-delivery-boundary",
    ] {
        assert!(
            planned.stdout.lines().any(|line| {
                let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
                words.starts_with("- delete") && words.contains(step)
            }),
            "{step}: {}",
            planned.stdout
        );
    }
    let refused = account.provision(&["pipeline", "run"], &without);
    assert!(refused.stderr.contains("the stack file has no [pipeline] table"), "{}", refused.stderr);
    let removed = account.provision(&["apply", "--yes"], &without);
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    assert_eq!(account.delivery_resources(), Vec::<String>::new());
    assert_eq!(account.provision(&["plan", "--detailed-exitcode"], &without).code, 0);

    // Back, then destroy leaves none of it.
    let stack = account.write_stack(&[(
        "log_retention_days = 14\n",
        &format!("log_retention_days = 14\n{}", pipeline_table("branch = \"release\"\n")),
    )]);
    assert_eq!(account.provision(&["apply", "--yes"], &stack).code, 0);
    assert_eq!(account.delivery_resources().len(), 6, "{:?}", account.delivery_resources());
    let destroyed = account.provision(&["destroy", "--yes"], &stack);
    assert_eq!(destroyed.code, 0, "{}\n{}", destroyed.stdout, destroyed.stderr);
    assert_eq!(account.delivery_resources(), Vec::<String>::new());
}
