//! The Cloud Map private DNS namespace (`local`): the domain the services'
//! names live in, answered by the VPC's resolver. It cannot move to another
//! VPC, so the VPC it was made in is kept in a tag.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, bail};

use crate::{
    clients::{
        Clients,
        error::{classify, explain},
    },
    engine::{
        names::{Names, Tags, tag_map},
        plan::Action,
        poll::poll_until,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
};
use stack_spec::Stack;

/// The Cloud Map private DNS namespace.
pub struct Namespace;

/// The namespace as plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// The DNS domain, e.g. `local`.
    pub name: String,
    /// The VPC it answers in, from the tag apply puts on it ([`VPC_TAG`]);
    /// a namespace cannot move to another VPC.
    pub vpc: Option<String>,
}

/// The tag recording a namespace's VPC (Cloud Map itself only tells it
/// through Route 53).
pub const VPC_TAG: &str = "vpc";

impl Kind for Namespace {
    const LABEL: &'static str = "cloud map namespace";
    const KEY: &'static str = "namespace";
    type Spec = NamespaceSpec;

    fn desired(stack: &Stack, live: &Live) -> Vec<NamespaceSpec> {
        vec![NamespaceSpec { name: stack.namespace.clone(), vpc: Some(live.vpc_id.clone()) }]
    }

    fn name(spec: &NamespaceSpec) -> &str {
        &spec.name
    }

    /// Nothing to change in place: a namespace exists or not.
    fn fields(_spec: &NamespaceSpec) -> Fields {
        Fields::new()
    }

    async fn read(cx: Cx<'_>, live: &Live) -> anyhow::Result<BTreeMap<String, Found<NamespaceSpec>>> {
        let found = read_namespace(cx.clients, cx.names, &cx.stack.namespace, &live.vpc_id).await?;
        Ok(found.into_iter().map(|found| (found.spec.name.clone(), found)).collect())
    }

    fn precondition(_want: &NamespaceSpec, have: Option<&Found<NamespaceSpec>>, live: &Live) -> anyhow::Result<()> {
        if let Some(namespace) = have.filter(|found| found.owned)
            && let Some(vpc) = namespace.spec.vpc.as_ref().filter(|vpc| **vpc != live.vpc_id)
        {
            bail!(
                "cloud map namespace {} answers in {vpc}, but the stack's VPC is {}: a namespace cannot move; run \
                 `provision destroy` with the stack as it was, then apply",
                namespace.spec.name,
                live.vpc_id
            );
        }
        Ok(())
    }

    /// Creates the namespace and waits for Cloud Map's operation; passes on
    /// its id.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &NamespaceSpec,
        have: Option<&Found<NamespaceSpec>>,
        _action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_servicediscovery::types::Tag;
        let (clients, names, vpc_id) = (cx.cx.clients, cx.cx.names, &cx.live.vpc_id);
        let name = &spec.name;
        if let Some(found) = have {
            return Ok(Output::id(&found.id));
        }
        let mut request = clients
            .cloud_map
            .create_private_dns_namespace()
            .name(name)
            .vpc(vpc_id)
            .description(format!("service discovery for {}", names.app()))
            // The SDK's retries of this request share the id, so a retry is
            // the same create; a later apply (after a destroy) gets a new one,
            // as Cloud Map refuses an id it has seen.
            .creator_request_id(request_id(names.app()));
        for (key, value) in names.tags() {
            request = request.tags(Tag::builder().key(key).value(value).build()?);
        }
        request = request.tags(Tag::builder().key(VPC_TAG).value(vpc_id).build()?);
        match request.send().await {
            Ok(answer) => {
                let operation = answer.operation_id().context("CreatePrivateDnsNamespace returned no operation")?;
                wait_operation(clients, operation, &format!("namespace {name}")).await?;
            }
            Err(error) => {
                let error = classify(error, "servicediscovery:CreatePrivateDnsNamespace", &format!("namespace {name}"));
                // An earlier, interrupted apply already asked for it.
                let retried = matches!(
                    error.code.as_deref(),
                    Some("DuplicateRequest" | "ConflictingDomainExists" | "NamespaceAlreadyExists")
                );
                if !retried {
                    return Err(error.into());
                }
            }
        }
        let appeared = poll_until(Duration::from_secs(300), Duration::from_secs(10), || async {
            Ok(read_namespace(clients, names, name, vpc_id).await?.map(|found| found.id))
        })
        .await?;
        let Some(id) = appeared else {
            bail!("namespace {name}: Cloud Map accepted the create but it did not appear within 5 minutes");
        };
        Self::done("created", name);
        Ok(Output::id(id))
    }

    fn own_tags(want: &NamespaceSpec) -> Tags {
        want.vpc.iter().map(|vpc| (VPC_TAG.to_owned(), vpc.clone())).collect()
    }

    async fn retag(cx: Cx<'_>, found: &Found<NamespaceSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        retag_cloud_map(cx.clients, &found.arn, set, remove).await
    }

    fn teardown_line(found: &Found<NamespaceSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("cloud map namespace {}", found.spec.name))
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<NamespaceSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for namespace in owned {
            let name = &namespace.spec.name;
            let answer = cx
                .clients
                .cloud_map
                .delete_namespace()
                .id(&namespace.id)
                .send()
                .await
                .map_err(|e| explain(e, "servicediscovery:DeleteNamespace", &format!("namespace {name}")))?;
            if let Some(operation) = answer.operation_id() {
                wait_operation(cx.clients, operation, &format!("namespace {name}")).await?;
            }
            crate::engine::journal::done("deleted", "cloud map namespace", name);
        }
        Ok(())
    }
}

/// Finds the private DNS namespace by name (Cloud Map refuses a second one
/// with the same name in a VPC, so a name is an identity).
pub async fn read_namespace(
    clients: &Clients,
    names: &Names,
    name: &str,
    vpc_id: &str,
) -> anyhow::Result<Option<Found<NamespaceSpec>>> {
    // The same name may exist once per VPC: prefer ours in this VPC.
    let mut candidates = Vec::new();
    let mut pages = clients.cloud_map.list_namespaces().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| explain(error, "servicediscovery:ListNamespaces", "namespaces"))?;
        for namespace in page.namespaces() {
            let private = namespace.r#type().map(|kind| kind.as_str()) == Some("DNS_PRIVATE");
            if namespace.name() == Some(name) && private {
                let arn = namespace.arn().unwrap_or_default().to_owned();
                let tags = cloud_map_tags(clients, &arn).await?;
                let owned = names.owns(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
                let vpc = tags.iter().find(|(key, _)| key == VPC_TAG).map(|(_, value)| value.clone());
                candidates.push(Found {
                    id: namespace.id().unwrap_or_default().to_owned(),
                    arn,
                    owned,
                    tags: Some(tag_map(tags)),
                    spec: NamespaceSpec { name: name.to_owned(), vpc },
                });
            }
        }
    }
    let rank = |found: &Found<NamespaceSpec>| (found.owned, found.spec.vpc.as_deref() == Some(vpc_id));
    Ok(candidates.into_iter().max_by_key(rank))
}

/// The tags of a Cloud Map resource.
pub async fn cloud_map_tags(clients: &Clients, arn: &str) -> anyhow::Result<Vec<(String, String)>> {
    let tags = clients
        .cloud_map
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|error| explain(error, "servicediscovery:ListTagsForResource", arn))?;
    Ok(tags.tags().iter().map(|tag| (tag.key().to_owned(), tag.value().to_owned())).collect())
}

/// Puts a Cloud Map resource's tags back to the stack's.
pub async fn retag_cloud_map(clients: &Clients, arn: &str, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
    use aws_sdk_servicediscovery::types::Tag;
    if !set.is_empty() {
        let tags =
            set.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect::<Result<_, _>>()?;
        clients
            .cloud_map
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|error| explain(error, "servicediscovery:TagResource", arn))?;
    }
    if !remove.is_empty() {
        clients
            .cloud_map
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove.to_vec()))
            .send()
            .await
            .map_err(|error| explain(error, "servicediscovery:UntagResource", arn))?;
    }
    Ok(())
}

/// Polls a Cloud Map operation until it succeeds; a failure is reported
/// with Cloud Map's reason.
pub async fn wait_operation(clients: &Clients, operation: &str, what: &str) -> anyhow::Result<()> {
    let finished = poll_until(Duration::from_secs(300), Duration::from_secs(10), || async {
        let answer = clients
            .cloud_map
            .get_operation()
            .operation_id(operation)
            .send()
            .await
            .map_err(|e| explain(e, "servicediscovery:GetOperation", what))?;
        let state = answer.operation().context("GetOperation returned no operation")?;
        match state.status().map(|status| status.as_str()) {
            Some("SUCCESS") => Ok(Some(())),
            Some("FAIL") => bail!(
                "{what}: Cloud Map operation failed: {} ({})",
                state.error_message().unwrap_or("no reason given"),
                state.error_code().unwrap_or("no code")
            ),
            _ => Ok(None),
        }
    })
    .await?;
    if finished.is_none() {
        bail!("{what}: Cloud Map operation {operation} did not finish within 5 minutes");
    }
    Ok(())
}

/// An id for one create request: unique per attempt of this process.
fn request_id(app: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut id = format!("{app}-{}-{nanos}", std::process::id());
    id.truncate(64);
    id
}
