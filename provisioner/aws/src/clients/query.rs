//! AWS's Query protocol, shared by the APIs provision speaks without an SDK
//! crate (EC2, Elastic Load Balancing): a form-encoded POST of `Action`,
//! `Version` and the call's parameters over [`super::signed`], an XML
//! answer, and the error in it when the call failed.

use super::{
    error::{AwsError, Failure},
    signed::{Request, SignedClient},
};

/// A client of one Query API in one region (or one `--endpoint-url`).
#[derive(Clone, Debug)]
pub struct QueryClient {
    client: SignedClient,
    /// The API version every call names.
    version: &'static str,
    /// How IAM names the service's actions (`ec2`, `elasticloadbalancing`).
    service: &'static str,
}

impl QueryClient {
    /// A client of the API at endpoint prefix and signing name `service`,
    /// speaking `version`.
    pub fn new(
        config: &aws_types::SdkConfig,
        region: &str,
        service: &'static str,
        version: &'static str,
    ) -> anyhow::Result<Self> {
        Ok(Self { client: SignedClient::new(config, region, service, service)?, version, service })
    }

    /// One call, retried with backoff while the failure is transient; the
    /// answer's root element.
    pub async fn call(&self, action: &str, params: &[(String, String)], resource: &str) -> Result<Element, AwsError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", action)
            .append_pair("Version", self.version)
            .extend_pairs(params)
            .finish();
        let request = Request {
            method: "POST",
            path: "",
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            headers: &[],
            body: &body,
        };
        self.client.send(&request, &format!("{}:{action}", self.service), resource, answer).await
    }
}

/// `PREFIX.1`, `PREFIX.2`, ...
pub fn numbered(prefix: &str, values: impl Iterator<Item = String>) -> Vec<(String, String)> {
    values.enumerate().map(|(index, value)| (format!("{prefix}.{}", index + 1), value)).collect()
}

/// An answer's XML, or the error in it: EC2 puts it in
/// `<Response><Errors><Error>`, the other Query APIs in
/// `<ErrorResponse><Error>`.
fn answer(status: u16, text: &str) -> Result<Element, Failure> {
    let document = Element::parse(text).map_err(|error| {
        Failure::Transport(format!("HTTP {status} with an answer that is not XML ({error}): {text:.200}"))
    })?;
    if (200..300).contains(&status) {
        return Ok(document);
    }
    let error = document.child("Errors").and_then(|errors| errors.child("Error")).or_else(|| document.child("Error"));
    Err(Failure::Service {
        status,
        code: error.and_then(|error| error.text("Code")),
        message: error.and_then(|error| error.text("Message")).unwrap_or_else(|| format!("HTTP {status}")),
    })
}

/// An XML element of an answer: its local name, its text, its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    /// Parses a whole answer into its root element.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut stack: Vec<Element> = vec![Element::default()];
        for token in xmlparser::Tokenizer::from(text) {
            match token.map_err(|error| error.to_string())? {
                xmlparser::Token::ElementStart { local, .. } => {
                    stack.push(Element { name: local.as_str().to_owned(), ..Element::default() });
                }
                xmlparser::Token::ElementEnd { end: xmlparser::ElementEnd::Open, .. } => {}
                xmlparser::Token::ElementEnd { .. } => {
                    let done = stack.pop().filter(|_| !stack.is_empty()).ok_or("unbalanced tags")?;
                    stack.last_mut().ok_or("unbalanced tags")?.children.push(done);
                }
                xmlparser::Token::Text { text } => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&unescape(text.as_str()));
                    }
                }
                xmlparser::Token::Cdata { text, .. } => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(text.as_str());
                    }
                }
                _ => {}
            }
        }
        let mut document = stack.pop().filter(|_| stack.is_empty()).ok_or("unclosed tags")?;
        if document.children.len() != 1 {
            return Err("no single root element".into());
        }
        Ok(document.children.remove(0))
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The trimmed text of the child called `name`, if it has any.
    pub fn text(&self, name: &str) -> Option<String> {
        self.child(name).map(|child| child.text.trim().to_owned()).filter(|text| !text.is_empty())
    }

    /// The `<item>`s of the list called `name` (EC2's lists).
    pub fn items(&self, name: &str) -> Vec<&Element> {
        self.child(name)
            .map(|list| list.children.iter().filter(|item| item.name == "item").collect())
            .unwrap_or_default()
    }
}

/// XML's five named entities and numeric character references.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(character) => {
                out.push(character);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <securityGroupInfo>
    <item>
      <groupId>sg-1</groupId>
      <groupName>shop-tasks</groupName>
      <ipPermissions>
        <item>
          <ipProtocol>tcp</ipProtocol><fromPort>5000</fromPort><toPort>5000</toPort>
          <groups><item><groupId>sg-1</groupId><description>tasks &amp; more</description></item></groups>
          <ipRanges><item><cidrIp>10.0.0.0/8</cidrIp></item></ipRanges>
        </item>
      </ipPermissions>
      <tagSet><item><key>app</key><value>shop</value></item><item><key>empty</key><value/></item></tagSet>
    </item>
  </securityGroupInfo>
  <nextToken>page-2</nextToken>
</DescribeSecurityGroupsResponse>"#;

    #[test]
    fn an_answer_parses_into_items_with_text_entities_and_empty_values() {
        let root = Element::parse(GROUPS).unwrap();
        assert_eq!(root.name, "DescribeSecurityGroupsResponse");
        assert_eq!(root.text("nextToken").as_deref(), Some("page-2"));
        let groups = root.items("securityGroupInfo");
        assert_eq!(groups.len(), 1);
        let permission = groups[0].items("ipPermissions")[0];
        assert_eq!(permission.text("fromPort").as_deref(), Some("5000"));
        let pair = permission.items("groups")[0];
        assert_eq!(pair.text("description").as_deref(), Some("tasks & more"));
        let tags = groups[0].items("tagSet");
        assert_eq!(tags[1].text("value"), None);
    }

    #[test]
    fn errors_of_both_shapes_and_garbage_are_told_apart() {
        let ec2 = "<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>no &#x27;sg-9&#39;</Message>\
                   </Error></Errors><RequestID>x</RequestID></Response>";
        let Err(Failure::Service { code, message, .. }) = answer(400, ec2) else { panic!("an error") };
        assert_eq!((code.as_deref(), message.as_str()), (Some("InvalidGroup.NotFound"), "no 'sg-9'"));
        let elb = "<ErrorResponse><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code>\
                   <Message>One or more load balancers not found</Message></Error></ErrorResponse>";
        let Err(Failure::Service { code, .. }) = answer(400, elb) else { panic!("an error") };
        assert_eq!(code.as_deref(), Some("LoadBalancerNotFound"));
        let items = Element::parse("<R><L><item><A>1</A></item><item><A>2</A></item></L></R>").unwrap();
        assert_eq!(items.items("L").iter().filter_map(|item| item.text("A")).collect::<Vec<_>>(), ["1", "2"]);
        assert!(Element::parse("<a><b></a>").is_err());
        assert!(matches!(answer(502, "not xml at all"), Err(Failure::Transport(_))));
    }
}
