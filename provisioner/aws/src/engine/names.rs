//! How the stack's resources are named and tagged on AWS. Everything is
//! found again by these names and checked by these tags, never guessed.

use std::collections::BTreeMap;

use stack_spec::Stack;

/// A resource's tags by key.
pub type Tags = BTreeMap<String, String>;

/// The tag naming the app a resource belongs to.
pub const APP_TAG: &str = "app";
/// The tag marking resources this tool manages (and may change or delete).
pub const MANAGED_BY_TAG: &str = "managed-by";
/// The value of [`MANAGED_BY_TAG`].
pub const MANAGED_BY: &str = "provision";
/// The name of the inline policy this tool puts on its roles.
pub const INLINE_POLICY: &str = "provision";
/// Where the service binary sits in the image (see the Dockerfile).
pub const IMAGE_BINARY: &str = "/usr/local/bin/service";
/// The container's name in every task definition.
pub const CONTAINER: &str = "service";

/// Names of one app's resources, and the tags they carry.
#[derive(Debug, Clone)]
pub struct Names {
    app: String,
    /// `[aws.tags]`: carried besides the two ownership tags.
    extra_tags: Tags,
}

impl Names {
    /// Names for `app`, tagged only as its own.
    pub fn new(app: &str) -> Self {
        Self { app: app.to_owned(), extra_tags: Tags::new() }
    }

    /// Names for the stack's app, with the stack's `[aws.tags]`.
    pub fn of(stack: &Stack) -> Self {
        Self { app: stack.app.clone(), extra_tags: stack.aws.tags.clone() }
    }

    /// The app's name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The security group every task of the app is in.
    pub fn security_group(&self) -> String {
        format!("{}-tasks", self.app)
    }

    /// The role ECS uses to pull images, write logs and read secrets.
    pub fn execution_role(&self) -> String {
        format!("{}-execution", self.app)
    }

    /// The role a service's code runs as.
    pub fn task_role(&self, service: &str) -> String {
        format!("{}-{service}-task", self.app)
    }

    /// A service's CloudWatch log group.
    pub fn log_group(&self, service: &str) -> String {
        format!("/ecs/{}/{service}", self.app)
    }

    /// A service's ECR repository.
    pub fn repository(&self, service: &str) -> String {
        format!("{}/{service}", self.app)
    }

    /// A service's task definition family.
    pub fn family(&self, service: &str) -> String {
        format!("{}-{service}", self.app)
    }

    /// A store's ElastiCache replication group and cache subnet group.
    pub fn store(&self, store: &str) -> String {
        format!("{}-{store}", self.app)
    }

    /// The security group in front of a store.
    pub fn store_security_group(&self, store: &str) -> String {
        format!("{}-{store}-store", self.app)
    }

    /// The Secrets Manager secret holding a store's URL (with its AUTH
    /// token).
    pub fn store_secret(&self, store: &str) -> String {
        format!("{}/{store}/url", self.app)
    }

    /// A service's load balancer and its target group (ELBv2 allows 32
    /// characters: see `limits`).
    pub fn load_balancer(&self, service: &str) -> String {
        format!("{}-{service}", self.app)
    }

    /// The security group of a service's load balancer.
    pub fn ingress_security_group(&self, service: &str) -> String {
        format!("{}-{service}-ingress", self.app)
    }

    /// The role the pipeline's build runs as.
    pub fn build_role(&self) -> String {
        format!("{}-build", self.app)
    }

    /// The role the pipeline itself runs as.
    pub fn pipeline_role(&self) -> String {
        format!("{}-pipeline", self.app)
    }

    /// The permissions boundary of the roles the app's tasks run as (and
    /// of any role the build may change): the most they may ever do.
    pub fn boundary(&self) -> String {
        format!("{}-boundary", self.app)
    }

    /// The permissions boundary of the pipeline's own roles.
    pub fn delivery_boundary(&self) -> String {
        format!("{}-delivery-boundary", self.app)
    }

    /// The CodePipeline, and the CodeBuild project it runs.
    pub fn pipeline(&self) -> String {
        self.app.clone()
    }

    /// The CodeBuild project that tests, builds and deploys.
    pub fn build_project(&self) -> String {
        format!("{}-deploy", self.app)
    }

    /// The build's CloudWatch log group.
    pub fn build_log_group(&self) -> String {
        format!("/codebuild/{}", self.app)
    }

    /// The pipeline's artifact bucket: S3 names are global, so the account
    /// and region are in it.
    pub fn artifact_bucket(&self, account: &str, region: &str) -> String {
        format!("{}-pipeline-{account}-{region}", self.app)
    }

    /// Whether `tags` mark a resource as this app's.
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let (mut app, mut managed) = (false, false);
        for (key, value) in tags {
            app |= key == APP_TAG && value == self.app;
            managed |= key == MANAGED_BY_TAG && value == MANAGED_BY;
        }
        app && managed
    }

    /// Checks a resource a create found already there (made meanwhile by
    /// an interrupted apply of ours, or by someone else) by its `tags`:
    /// carried on with only if they say it is this app's.
    pub fn check_appeared<'a>(
        &self,
        what: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<()> {
        if self.owns(tags) {
            return Ok(());
        }
        anyhow::bail!(
            "{what} appeared while this apply ran and is not this app's (it lacks the tags app={} and \
             managed-by=provision): provision will not take it over; rename the app, or remove it",
            self.app
        )
    }

    /// The tags every resource gets: the two that mark it as this app's,
    /// then the stack's own.
    pub fn tags(&self) -> Vec<(String, String)> {
        self.tag_map().into_iter().collect()
    }

    /// [`Self::tags`] by key.
    pub fn tag_map(&self) -> Tags {
        let mut tags = self.extra_tags.clone();
        tags.insert(APP_TAG.to_owned(), self.app.clone());
        tags.insert(MANAGED_BY_TAG.to_owned(), MANAGED_BY.to_owned());
        tags
    }
}

/// Tags read from AWS as a map; any tag pair iterator will do.
pub fn tag_map<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Tags {
    pairs.into_iter().map(|(key, value)| (key.into(), value.into())).collect()
}

/// What retagging takes a resource from `live` to `wanted`: the tags to
/// set (new or changed) and the keys to remove. Keys under `aws:` belong
/// to AWS and are neither compared nor removed.
pub fn tag_changes(wanted: &Tags, live: &Tags) -> (Tags, Vec<String>) {
    let set = wanted.iter().filter(|(key, value)| live.get(*key) != Some(value)).map(|(k, v)| (k.clone(), v.clone()));
    let remove = live.keys().filter(|key| !wanted.contains_key(*key) && !is_aws_tag(key)).cloned().collect();
    (set.collect(), remove)
}

/// The whole tag set after [`tag_changes`], for the APIs that replace
/// every tag at once (S3's `PutBucketTagging`, CodeBuild's
/// `UpdateProject`); AWS's own tags are left out, as no caller may set
/// them.
pub fn retagged(live: Option<&Tags>, set: &Tags, remove: &[String]) -> Tags {
    let mut tags: Tags = live
        .into_iter()
        .flatten()
        .filter(|(key, _)| !is_aws_tag(key) && !remove.contains(key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(set.iter().map(|(key, value)| (key.clone(), value.clone())));
    tags
}

/// Tags AWS itself puts on resources (`aws:cloudformation:stack-name`...),
/// which no caller may change.
pub fn is_aws_tag(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("aws:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_needs_both_tags_with_this_app() {
        let names = Names::new("shop");
        assert!(names.owns([("app", "shop"), ("managed-by", "provision"), ("team", "x")]));
        assert!(!names.owns([("app", "shop")]));
        assert!(!names.owns([("app", "other"), ("managed-by", "provision")]));
        assert!(!names.owns([]));
    }

    #[test]
    fn a_resource_that_appeared_is_carried_on_with_only_when_its_tags_say_it_is_ours() {
        let names = Names::new("shop");
        assert!(
            names.check_appeared("iam role shop-execution", [("app", "shop"), ("managed-by", "provision")]).is_ok()
        );
        let error = names.check_appeared("iam role shop-execution", [("app", "shop")]).unwrap_err().to_string();
        assert!(
            error.starts_with("iam role shop-execution appeared while this apply ran and is not this app's"),
            "{error}"
        );
    }

    #[test]
    fn tag_changes_set_what_differs_and_remove_what_the_stack_dropped_but_not_aws_tags() {
        let wanted = tag_map([("app", "shop"), ("team", "games")]);
        let live = tag_map([("app", "shop"), ("team", "web"), ("old", "1"), ("aws:cloudformation:stack-id", "x")]);
        assert_eq!(tag_changes(&wanted, &live), (tag_map([("team", "games")]), vec!["old".to_owned()]));
        assert_eq!(tag_changes(&wanted, &wanted), (Tags::new(), Vec::new()));
    }
}
