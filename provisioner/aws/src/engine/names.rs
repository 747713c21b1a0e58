//! How the stack's resources are named and tagged on AWS. Everything is
//! found again by these names and checked by these tags, never guessed.

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

/// Names of one app's resources.
#[derive(Debug, Clone)]
pub struct Names {
    app: String,
}

impl Names {
    /// Names for `app`.
    pub fn new(app: &str) -> Self {
        Self { app: app.to_owned() }
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

    /// The tags every resource gets.
    pub fn tags(&self) -> [(&'static str, String); 2] {
        [(APP_TAG, self.app.clone()), (MANAGED_BY_TAG, MANAGED_BY.to_owned())]
    }

    /// [`Self::tags`] as owned pairs, as the hand-written clients take them.
    pub fn tag_pairs(&self) -> Vec<(String, String)> {
        self.tags().into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
    }
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
}
