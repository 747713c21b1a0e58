//! AWS as moto does not show it: the real `provision` against moto's server
//! through a proxy that fails one request in five once (throttling in the
//! protocol's own shape, a 500, a reset connection), or that pages every
//! list and describe call at two items. plan, apply, status and destroy
//! end as they do without it, within their deadlines: every client retries
//! what AWS says may be retried and follows every page.

mod aws_account;

use aws_account::{Account, Run, run};
use serde_json::json;
use test_support::{FaultProxy, validate_requests};

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_status_and_destroy_end_as_without_faults_when_a_fifth_of_requests_fail() {
    let account = Account::new().await;
    let proxy = FaultProxy::start(&account.moto.url(), 5);
    let stack = account.write_stack(&[]);
    let through = |args: &[&str]| -> Run {
        let mut command = account.command(args, &stack);
        command.env("AWS_ENDPOINT_URL", proxy.url());
        run(command)
    };

    let retry_lines = |run: &Run| -> usize {
        run.stderr.lines().filter(|line| line.starts_with("  attempt ") || line.starts_with("  retry ")).count()
    };
    let plan = through(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "changes pending: {}\n{}", plan.stdout, plan.stderr);
    let faults_before_apply = proxy.faults().len();
    assert!(faults_before_apply > 0, "the plan met faults");
    assert_eq!(retry_lines(&plan), 0, "retries are said only with --verbose: {}", plan.stderr);
    let apply = through(&["apply", "--yes", "--no-wait", "--verbose"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    // A line per failed attempt the clients tried again, with --verbose.
    let retried = proxy.faults().len() - faults_before_apply;
    assert_eq!(retry_lines(&apply), retried, "{retried} faults: {}", apply.stderr);
    let clean = through(&["plan", "--detailed-exitcode"]);
    assert_eq!(clean.code, 0, "a second plan is clean: {}\n{}", clean.stdout, clean.stderr);
    let direct = account.provision(&["status"], &stack);
    let status = through(&["status"]);
    assert_eq!(status.code, direct.code, "{}\n{}", status.stdout, status.stderr);
    assert_eq!(
        status.stdout.lines().count(),
        direct.stdout.lines().count(),
        "{}\n---\n{}",
        status.stdout,
        direct.stdout
    );
    let destroy = through(&["destroy", "--yes"]);
    assert_eq!(destroy.code, 0, "{}\n{}", destroy.stdout, destroy.stderr);
    assert!(account.service("game-server").await.is_none());
    assert!(account.namespaces_named("shop.internal").await.is_empty());
    assert!(account.security_groups_named("shop-tasks").await.is_empty());
    let gone = account.provision(&["destroy", "--yes"], &stack);
    assert!(gone.stdout.contains("Nothing of app shop exists"), "{}", gone.stdout);

    // The proxy did fail requests, of each kind and in each protocol.
    let faults = proxy.faults();
    assert!(faults.len() >= 10, "{} faults: {faults:#?}", faults.len());
    for kind in ["throttle ", "500 ", "reset "] {
        assert!(faults.iter().any(|fault| fault.starts_with(kind)), "no {kind}fault: {faults:#?}");
    }
}

/// moto answers in one page; through the proxy every list and describe
/// call pages at two items (or its API's minimum), so a read that does not
/// follow its token misses what is on the next page, and plan after apply
/// would not be clean. A stack with every optional table, and a task role
/// with three managed policies.
#[tokio::test(flavor = "multi_thread")]
async fn with_two_item_pages_a_stack_with_every_table_plans_clean_after_apply() {
    let account = Account::new().await;
    let proxy = FaultProxy::paging(&account.moto.url(), 2);
    let stack = account.write_stack_with_every_table(&[]);
    let through = |args: &[&str]| -> Run {
        let mut command = account.command(args, &stack);
        command.env("AWS_ENDPOINT_URL", proxy.url());
        run(command)
    };
    let apply = through(&["apply", "--yes", "--no-wait"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let clean = through(&["plan", "--detailed-exitcode"]);
    assert_eq!(clean.code, 0, "a second plan is clean: {}\n{}", clean.stdout, clean.stderr);
    // Paged indeed: calls asked for two items, and tokens were followed.
    let bodies: Vec<String> =
        account.moto.requests().iter().map(|request| request["body"].as_str().unwrap_or_default().to_owned()).collect();
    let sized = ["\"maxResults\": 2", "\"MaxResults\": 2", "MaxItems=2", "PageSize=2", "\"limit\": 2"];
    let paged = bodies.iter().filter(|body| sized.iter().any(|size| body.contains(size))).count();
    assert!(paged >= 10, "{paged} requests paged at two");
    let tokens = ["\"nextToken\"", "\"NextToken\"", "NextToken=", "Marker="];
    let followed: Vec<&String> = bodies.iter().filter(|body| tokens.iter().any(|token| body.contains(token))).collect();
    assert!(!followed.is_empty(), "no page followed");
}

/// S3 refuses a HEAD of a bucket with 403 both when another account owns
/// the name and when the caller may not read its own bucket (moto allows
/// everything: the proxy refuses the HEAD as S3 would). Before apply, the
/// name is nobody's in this account: plan says it is not this app's and
/// will not take it over. After apply, the bucket is this account's (in
/// ListBuckets): plan fails with the permission the caller lacks.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_head_refused_is_another_accounts_only_when_this_account_does_not_list_it() {
    let account = Account::new().await;
    let stack = account.write_stack_with_every_table(&[]);
    let bucket = "shop-pipeline-123456789012-us-east-1";
    let proxy = FaultProxy::denying(&account.moto.url(), "HEAD", &format!("/{bucket}/?"));
    let through = |args: &[&str]| -> Run {
        let mut command = account.command(args, &stack);
        command.env("AWS_ENDPOINT_URL", proxy.url());
        run(command)
    };
    let foreign = through(&["plan"]);
    assert_eq!(foreign.code, 1, "{}\n{}", foreign.stdout, foreign.stderr);
    assert!(foreign.stderr.contains("are not this app's"), "{}", foreign.stderr);
    assert!(foreign.stderr.contains(&format!("s3 bucket {bucket}")), "{}", foreign.stderr);

    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let own = through(&["plan"]);
    assert_eq!(own.code, 1, "{}\n{}", own.stdout, own.stderr);
    assert!(
        own.stderr.contains(&format!(
            "s3:HeadBucket on bucket {bucket} was refused (403): the bucket is this account's, so the caller lacks \
             s3:ListBucket on arn:aws:s3:::{bucket}"
        )),
        "{}",
        own.stderr
    );
    assert!(!proxy.faults().is_empty(), "the proxy refused the HEAD");
}

/// A delete AWS refuses (here the artifact bucket's) does not stop
/// destroy: everything that does not need it goes, the failure is listed,
/// destroy exits non-zero, and a rerun finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn destroy_goes_on_past_a_refused_delete_lists_it_and_a_rerun_finishes() {
    let account = Account::new().await;
    let stack = account.write_stack_with_every_table(&[]);
    // Without its store: moto 5.2.5 has no DeleteCacheSubnetGroup, which
    // would be a second failure here.
    let text = std::fs::read_to_string(&stack).unwrap();
    let without_store =
        text.replace("\n[service.stores]\nRANKING_STORE = \"board\"\n\n[[store]]\nname = \"board\"\n", "\n");
    assert_ne!(text, without_store, "the stack had a store");
    std::fs::write(&stack, without_store).unwrap();
    let bucket = "shop-pipeline-123456789012-us-east-1";
    let apply = account.provision(&["apply", "--yes", "--no-wait"], &stack);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);

    let proxy = FaultProxy::denying(&account.moto.url(), "DELETE", &format!("/{bucket}/?"));
    let mut command = account.command(&["destroy", "--yes"], &stack);
    command.env("AWS_ENDPOINT_URL", proxy.url());
    let destroy = run(command);
    assert_eq!(destroy.code, 1, "{}\n{}", destroy.stdout, destroy.stderr);
    assert!(destroy.stdout.contains("Left behind:\n  - artifact-bucket: could not be deleted: "), "{}", destroy.stdout);
    assert!(destroy.stderr.contains("run destroy again to finish"), "{}", destroy.stderr);
    // Everything else went, the kinds after the bucket in destroy's order too.
    assert!(account.service("game-server").await.is_none());
    assert!(account.namespaces_named("shop.internal").await.is_empty());
    assert!(account.security_groups_named("shop-tasks").await.is_empty());
    let buckets = account.moto.boto3("s3", "list_buckets", json!({}));
    assert!(buckets.to_string().contains(bucket), "the refused bucket stays: {buckets}");

    let rerun = account.provision(&["destroy", "--yes"], &stack);
    assert_eq!(rerun.code, 0, "{}\n{}", rerun.stdout, rerun.stderr);
    let buckets = account.moto.boto3("s3", "list_buckets", json!({}));
    assert!(!buckets.to_string().contains(bucket), "{buckets}");
    let gone = account.provision(&["destroy", "--yes"], &stack);
    assert!(gone.stdout.contains("Nothing of app shop exists"), "{}", gone.stdout);
}

/// The check `.ci/run` runs over every request the AWS tests sent (see
/// `services/test-support/validate_requests.py`) refuses what AWS would:
/// a recording with a broken request of each protocol fails it, naming
/// each fault; the same requests made right pass.
#[test]
fn the_model_check_refuses_requests_that_break_their_model() {
    let dir = std::env::temp_dir().join(format!("model-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth = |service: &str| {
        format!("AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/{service}/aws4_request, SignedHeaders=host")
    };
    let request = |service: &str, target: Option<&str>, body: &str| {
        let mut headers = json!({"Authorization": auth(service), "User-Agent": "aws-sdk-rust/1.3"});
        if let Some(target) = target {
            headers["X-Amz-Target"] = json!(target);
        }
        json!({"method": "POST", "url": "http://127.0.0.1/", "headers": headers, "body": body, "body_encoded": false})
            .to_string()
    };
    // S3's REST-XML: the operation is found by method, path and query.
    let tagging = |body: &str| {
        let headers = json!({"Authorization": auth("s3"), "User-Agent": "aws-sdk-rust/1.3"});
        json!({"method": "PUT", "url": "http://127.0.0.1/bucket/?tagging", "headers": headers, "body": body})
            .to_string()
    };
    let update = "AmazonEC2ContainerServiceV20141113.UpdateService";
    let write = |name: &str, lines: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    };
    let broken = write(
        "broken",
        &[
            request(
                "ecs",
                Some(update),
                r#"{"service": "game-server", "desiredCount": "four", "serviceRegistriez": []}"#,
            ),
            request("iam", None, "Action=CreateRole&Version=2010-05-08&AssumeRolePolicyDocument=%7B%7D"),
            request(
                "ec2",
                None,
                "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1&IpPermissions.1.IpProtocol=tcp\
             &IpPermissions.1.Bogus=1",
            ),
            tagging("<Tagging><TagSet><Tag><Value>v</Value><Colour>red</Colour></Tag></TagSet></Tagging>"),
        ],
    );
    let (passed, printed) = validate_requests(&[broken]);
    assert!(!passed, "{printed}");
    let faults = ["desiredCount", "serviceRegistriez", "RoleName", "IpPermissions.1.Bogus", "Colour", "\"Key\""];
    for fault in faults.into_iter().chain(["5 violations"]) {
        assert!(printed.contains(fault), "{fault}: {printed}");
    }
    let right = write(
        "right",
        &[
            request("ecs", Some(update), r#"{"service": "game-server", "desiredCount": 4}"#),
            request("iam", None, "Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B%7D"),
            request(
                "ec2",
                None,
                "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1&IpPermissions.1.IpProtocol=tcp\
             &IpPermissions.1.FromPort=5000&IpPermissions.1.ToPort=5000",
            ),
            tagging("<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"),
        ],
    );
    let (passed, printed) = validate_requests(&[right]);
    assert!(passed, "{printed}");
    assert!(printed.contains("4 requests of 4 operations checked"), "{printed}");
    let _ = std::fs::remove_dir_all(&dir);
}
