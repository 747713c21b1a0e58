//! Each store's URL in a Secrets Manager secret: `rediss://:TOKEN@PRIMARY:PORT`
//! with an AUTH token made once (64 letters and digits: ElastiCache takes
//! 16 to 128 printable characters, and only these need no escaping in a
//! URL). ECS hands it to the services that use the store as a `secrets`
//! variable; the token never appears in plan, logs or `--output json`.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use rand::{RngExt, distr::Alphanumeric};

use super::replication_group::ReplicationGroup;
use crate::{
    clients::{
        Clients,
        error::{classify, explain, unless_gone},
    },
    engine::{
        names::{Names, Tags, tag_map},
        plan::Action,
        resource::{ApplyCx, Cx, DestroyOptions, Fields, Found, Kind, Output},
        state::Live,
    },
};
use stack_spec::Stack;

/// A store's secret.
pub struct StoreSecret;

/// The host a store's URL names until its primary endpoint is known.
pub const PENDING_HOST: &str = "store-not-created-yet.invalid";

/// A secret as plan sees it: the URL without its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub name: String,
    /// `rediss://***@HOST:PORT`.
    pub url: String,
}

impl Kind for StoreSecret {
    const LABEL: &'static str = "secret";
    const KEY: &'static str = "store-secret";
    type Spec = SecretSpec;

    /// The URL names the store's primary endpoint once it exists.
    fn desired(stack: &Stack, live: &Live) -> Vec<SecretSpec> {
        let names = Names::of(stack);
        stack
            .stores
            .iter()
            .map(|store| {
                let endpoint = live.get::<ReplicationGroup>(&names.store(&store.name)).and_then(|found| {
                    let spec = &found.spec;
                    spec.primary.as_ref().map(|host| format!("{host}:{}", spec.port))
                });
                let host = endpoint.unwrap_or_else(|| format!("{PENDING_HOST}:{}", store.port));
                SecretSpec { name: names.store_secret(&store.name), url: format!("rediss://***@{host}") }
            })
            .collect()
    }

    fn name(spec: &SecretSpec) -> &str {
        &spec.name
    }

    fn fields(spec: &SecretSpec) -> Fields {
        Fields::from([("url", spec.url.clone())])
    }

    async fn read(cx: Cx<'_>, _live: &Live) -> anyhow::Result<BTreeMap<String, Found<SecretSpec>>> {
        let secrets = &cx.clients.secrets;
        let mut found = BTreeMap::new();
        for store in &cx.stack.stores {
            let name = cx.names.store_secret(&store.name);
            let resource = format!("secret {name}");
            let described = secrets.describe_secret().secret_id(&name).send().await;
            let described = described.map_err(|error| classify(error, "secretsmanager:DescribeSecret", &resource));
            let Some(described) = unless_gone(described)? else { continue };
            // A secret scheduled for deletion is on its way out.
            if described.deleted_date().is_some() {
                continue;
            }
            let arn = described.arn().unwrap_or_default().to_owned();
            let owned =
                cx.names.owns(described.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or(""))));
            let url = read_url(cx.clients, &arn).await?.map(|url| redact(&url)).unwrap_or_default();
            let tags =
                Some(tag_map(described.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")))));
            found.insert(name.clone(), Found { id: arn.clone(), arn, owned, tags, spec: SecretSpec { name, url } });
        }
        Ok(found)
    }

    /// Creates the secret with a new token (the store is made with it), or
    /// points its URL at the store's primary endpoint; passes on its ARN.
    async fn apply(
        cx: ApplyCx<'_>,
        spec: &SecretSpec,
        have: Option<&Found<SecretSpec>>,
        action: &Action,
    ) -> anyhow::Result<Output> {
        use aws_sdk_secretsmanager::types::Tag;
        let secrets = &cx.cx.clients.secrets;
        let resource = format!("secret {}", spec.name);
        if let Some(found) = have {
            if matches!(action, Action::Update { .. }) {
                let host = spec.url.trim_start_matches("rediss://***@");
                publish(cx.cx.clients, &found.arn, host).await?;
                Self::done("updated", &spec.name);
            }
            return Ok(Output::id(&found.arn));
        }
        let token: String = rand::rng().sample_iter(Alphanumeric).take(64).map(char::from).collect();
        let url = spec.url.replacen("***", &format!(":{token}"), 1);
        let mut request = secrets
            .create_secret()
            .name(&spec.name)
            .description(format!("the URL and AUTH token of a Redis store of {}", cx.cx.names.app()))
            .secret_string(url);
        for (key, value) in cx.cx.names.tags() {
            request = request.tags(Tag::builder().key(key).value(value).build());
        }
        let arn = match request.send().await {
            Ok(answer) => answer.arn().unwrap_or_default().to_owned(),
            Err(error) => {
                let error = classify(error, "secretsmanager:CreateSecret", &resource);
                if error.code.as_deref() != Some("ResourceExistsException") {
                    return Err(error.into());
                }
                // Made by an apply that was interrupted: keep its token.
                let described = secrets.describe_secret().secret_id(&spec.name).send().await;
                let described = described.map_err(|e| explain(e, "secretsmanager:DescribeSecret", &resource))?;
                let tags = described.tags().iter().map(|tag| (tag.key().unwrap_or(""), tag.value().unwrap_or("")));
                cx.cx.names.check_appeared(&resource, tags)?;
                described.arn().unwrap_or_default().to_owned()
            }
        };
        Self::done("created", &spec.name);
        Ok(Output::id(arn))
    }

    fn teardown_line(found: &Found<SecretSpec>, _options: DestroyOptions) -> Option<String> {
        Some(format!("secret {} (the store's URL and AUTH token)", found.spec.name))
    }

    /// Deleted at once, without Secrets Manager's recovery window: the
    /// token opens nothing once its store is gone, and a recovery window
    /// would keep the name from the next apply.
    async fn retag(cx: Cx<'_>, found: &Found<SecretSpec>, set: &Tags, remove: &[String]) -> anyhow::Result<()> {
        use aws_sdk_secretsmanager::types::Tag;
        let (secrets, what) = (&cx.clients.secrets, format!("secret {}", found.spec.name));
        if !set.is_empty() {
            let tags = set.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect();
            let answer = secrets.tag_resource().secret_id(&found.arn).set_tags(Some(tags)).send().await;
            answer.map_err(|error| explain(error, "secretsmanager:TagResource", &what))?;
        }
        if !remove.is_empty() {
            let answer =
                secrets.untag_resource().secret_id(&found.arn).set_tag_keys(Some(remove.to_vec())).send().await;
            answer.map_err(|error| explain(error, "secretsmanager:UntagResource", &what))?;
        }
        Ok(())
    }

    async fn destroy(cx: Cx<'_>, owned: Vec<&Found<SecretSpec>>, _options: DestroyOptions) -> anyhow::Result<()> {
        for found in owned {
            cx.clients
                .secrets
                .delete_secret()
                .secret_id(&found.arn)
                .force_delete_without_recovery(true)
                .send()
                .await
                .map_err(|e| explain(e, "secretsmanager:DeleteSecret", &format!("secret {}", found.spec.name)))?;
            crate::engine::journal::done("deleted", "secret", &found.spec.name);
        }
        Ok(())
    }
}

/// The secret's URL, token and all; `None` before it has a value.
pub async fn read_url(clients: &Clients, arn: &str) -> anyhow::Result<Option<String>> {
    let value = clients.secrets.get_secret_value().secret_id(arn).send().await;
    let value = value.map_err(|error| classify(error, "secretsmanager:GetSecretValue", arn));
    Ok(unless_gone(value)?.and_then(|value| value.secret_string().map(str::to_owned)))
}

/// The AUTH token in a store's URL.
pub fn token_of(url: &str) -> anyhow::Result<String> {
    let token = url
        .strip_prefix("rediss://:")
        .and_then(|rest| rest.rsplit_once('@'))
        .map(|(token, _)| token.to_owned())
        .filter(|token| !token.is_empty());
    token.context("the store's secret does not hold a rediss://:TOKEN@HOST:PORT URL")
}

/// Points the secret's URL at `host` (`HOST:PORT`), keeping its token.
pub async fn publish(clients: &Clients, arn: &str, host: &str) -> anyhow::Result<()> {
    let Some(url) = read_url(clients, arn).await? else { bail!("secret {arn} has no value") };
    let wanted = format!("rediss://:{}@{host}", token_of(&url)?);
    if wanted != url {
        clients
            .secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(wanted)
            .send()
            .await
            .map_err(|e| explain(e, "secretsmanager:PutSecretValue", arn))?;
    }
    Ok(())
}

/// A URL as logs and plan may show it: `rediss://***@HOST:PORT`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_back_and_never_shown() {
        let url = "rediss://:AbC123@master.x.cache.amazonaws.com:6379";
        assert_eq!(token_of(url).unwrap(), "AbC123");
        assert_eq!(redact(url), "rediss://***@master.x.cache.amazonaws.com:6379");
        assert!(token_of("redis://host:6379").is_err());
    }
}
