//! AWS when it is busy: the real `provision` against moto's server through
//! a proxy that fails one request in five once (throttling in the
//! protocol's own shape, a 500, a reset connection). plan, apply, status
//! and destroy end as they do without faults, within their deadlines:
//! every client retries what AWS says may be retried.

mod aws_account;

use aws_account::{Account, Run, run};
use test_support::FaultProxy;

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

    let plan = through(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "changes pending: {}\n{}", plan.stdout, plan.stderr);
    let apply = through(&["apply", "--yes", "--no-wait"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
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
